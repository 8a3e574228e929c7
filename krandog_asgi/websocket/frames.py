"""RFC 6455 frame codec: opcodes, close codes, masking, frame and close-payload building.

Stateless and free of I/O (no asyncio, no sockets): the parser that needs state lives in
``wsconn``. This is the hottest code of the WebSocket path, so it trades a little elegance for
fewer Python operations (precomputed headers, whole-buffer XOR masking).
"""

from __future__ import annotations

import enum
import struct

from krandog_asgi._abnf import close_code_is_sendable

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "CloseCode",
    "apply_mask",
    "build_close_payload",
    "build_frame",
    "parse_close_payload",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD = 125
# RFC 6455 §5.5.1: the close payload is a 2-byte code and a reason, so 123 bytes of reason.
MAX_CLOSE_REASON = 123


class CloseCode(enum.IntEnum):
    """Status codes of RFC 6455 §7.4.1 and the IANA registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never sent: "no code was present"
    ABNORMAL_CLOSURE = 1006  # never sent: "closed without a close frame"
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never sent


def apply_mask_py(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated; one big-integer XOR, no per-byte loop.

    The fallback when the C accelerator was not built.
    """
    n = len(data)
    if n == 0:
        return b""
    if n <= 4:
        return bytes(b ^ m for b, m in zip(data, mask[:n], strict=True))
    repeated = mask * ((n + 3) >> 2)
    return (int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")).to_bytes(
        n, "little"
    )


try:
    from krandog_asgi.websocket._speedups import apply_mask
except ImportError:  # pragma: no cover - built wherever a C compiler exists
    apply_mask = apply_mask_py


def rotate_mask(mask: bytes, offset: int) -> bytes:
    """The mask to apply to a payload slice that starts ``offset`` bytes into the frame."""
    k = offset & 3
    return mask[k:] + mask[:k] if k else mask


_HEADER_7 = [[bytes([0x80 | op, n]) for n in range(126)] for op in range(16)]
_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def frame_header(first_byte: int, length: int, masked: bool = False) -> bytes:
    """The 2-14 byte frame header (mask key excluded) for a payload of ``length`` bytes."""
    mask_bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first_byte, mask_bit | length))
    if length < 65536:
        return _PACK_16(first_byte, mask_bit | 126, length)
    return _PACK_64(first_byte, mask_bit | 127, length)


def build_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """Serialize one frame. ``mask`` (4 bytes) is given by clients, never by servers."""
    n = len(payload)
    if mask is None:
        if fin and not rsv1 and n < 126:
            return _HEADER_7[opcode][n] + payload
        first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        return frame_header(first, n) + payload
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    return frame_header(first, n, masked=True) + mask + apply_mask(payload, mask)


def build_close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame; ``None`` (or 1005) sends an empty close."""
    if code is None or code == CloseCode.NO_STATUS_RCVD:
        if reason:
            raise ValueError("A close reason needs a close code")
        return b""
    if not close_code_is_sendable(code):
        raise ValueError(f"Invalid close code {code}")
    raw = reason.encode("utf-8")
    if len(raw) > MAX_CLOSE_REASON:
        raise ValueError(f"Close reason is {len(raw)} bytes; the limit is {MAX_CLOSE_REASON}")
    return code.to_bytes(2, "big") + raw


class InvalidClosePayload(ValueError):
    """A peer's close payload broke RFC 6455 §5.5.1; ``close_code`` is what to answer with."""

    def __init__(self, message: str, close_code: int) -> None:
        super().__init__(message)
        self.close_code = close_code


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Decode a received close payload into (code, reason); 1005 when it carries no code."""
    n = len(payload)
    if n == 0:
        return CloseCode.NO_STATUS_RCVD, ""
    if n == 1:
        raise InvalidClosePayload("close frame with a 1-byte payload", CloseCode.PROTOCOL_ERROR)
    code = int.from_bytes(payload[:2], "big")
    if not close_code_is_sendable(code):
        raise InvalidClosePayload(f"invalid close code {code}", CloseCode.PROTOCOL_ERROR)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidClosePayload("close reason is not UTF-8", CloseCode.INVALID_DATA) from None
    return code, reason
