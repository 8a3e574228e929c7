"""RFC 6455 frame codec: opcodes, close codes, masking, frame headers and close payloads.

Stateless and free of I/O (no asyncio, no sockets). ``parse_header`` checks everything a frame
gets wrong on its own; what needs the connection's state (message reassembly, limits, extensions,
UTF-8) is checked in ``connection``. This is the hottest code of the WebSocket path, so it trades
a little elegance for fewer Python operations (a header is a plain tuple, precomputed headers,
whole-buffer XOR masking).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Any

from krandog_asgi._abnf import close_code_is_sendable

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "CloseCode",
    "FrameError",
    "FrameHeader",
    "apply_mask",
    "build_close_payload",
    "build_frame",
    "parse_close_payload",
    "parse_header",
    "scan_messages",
    "unmask",
    "unmask_into",
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


class FrameError(ValueError):
    """The peer's bytes broke RFC 6455: the connection must be failed with ``close_code``.

    Raised here for what one frame gets wrong on its own, and by ``connection`` for what breaks
    the connection's state (continuations, limits, extensions, UTF-8): one error type, so the
    parser has one place that turns it into a ``ProtocolFailure``.
    """

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


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


def rotate_mask(mask: bytes, offset: int) -> bytes:
    """The mask to apply to a payload slice that starts ``offset`` bytes into the frame."""
    k = offset & 3
    return mask[k:] + mask[:k] if k else mask


def unmask_py(
    data: bytes | bytearray | memoryview, mask: bytes, start: int, end: int, phase: int
) -> bytes:
    """``data[start:end]`` unmasked, the mask starting at byte ``phase % 4`` (a frame resumed
    in a later read). The C version copies once; here the slice is a view."""
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    if not 0 <= start <= end <= len(data):
        raise ValueError("start and end must satisfy 0 <= start <= end <= len")
    return apply_mask_py(memoryview(data)[start:end], rotate_mask(mask, phase))


def unmask_into_py(
    dst: bytearray,
    data: bytes | bytearray | memoryview,
    start: int,
    end: int,
    mask: bytes,
    phase: int,
) -> None:
    """Append ``data[start:end]`` unmasked (mask from byte ``phase % 4``) to ``dst``."""
    if type(dst) is not bytearray:
        raise TypeError("unmask_into: dst must be a bytearray")
    dst += unmask_py(data, mask, start, end, phase)


ScanMessages = Callable[[bytes, int, bool, int, int, list[Any]], int]
# The parser's fast path in C (``Connection.receive_data``), None without the accelerator.
scan_messages: ScanMessages | None

try:
    from krandog_asgi.websocket._speedups import (
        apply_mask,
        scan_messages,
        unmask,
        unmask_into,
    )
except ImportError:  # pragma: no cover - built wherever a C compiler exists
    apply_mask = apply_mask_py
    unmask = unmask_py
    unmask_into = unmask_into_py
    scan_messages = None  # the parser's Python loop does it all


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


# A decoded frame header: (opcode, fin, rsv, length, mask, start). ``fin`` and ``rsv`` are the
# first byte's bits masked in place (0x80, and 0x70 with RSV1 = 0x40), ``mask`` is the masking key
# or None, ``start`` the payload's offset in the buffer. A tuple, not an object: the parser builds
# one per frame, and a tuple costs a third of a slotted instance.
FrameHeader = tuple[int, int, int, int, bytes | None, int]


def parse_header(data: bytes, pos: int, must_mask: bool) -> FrameHeader | None:
    """Decode the frame header at ``data[pos:]`` (RFC 6455 §5.2); None while it is incomplete.

    ``must_mask``: the peer is a client, whose frames must be masked; a server's must not be
    (§5.1). Raises ``FrameError`` for wrong masking, the top bit of a 64-bit length, reserved
    opcodes, and control frames that are fragmented, carry RSV bits or over 125 bytes (§5.5).
    The payload is not looked at: it may not have arrived yet.
    """
    avail = len(data) - pos
    if avail < 2:
        return None
    b0 = data[pos]
    b1 = data[pos + 1]
    length = b1 & 0x7F
    masked = b1 & 0x80
    hlen = 6 if masked else 2
    if length < 126:  # the common 2- or 6-byte header: no extended length
        if avail < hlen:
            return None
    elif length == 126:
        hlen += 2
        if avail < hlen:
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
    else:
        hlen += 8
        if avail < hlen:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 10], "big")
        if length >> 63:
            raise FrameError(CloseCode.PROTOCOL_ERROR, "frame length with the top bit set")
    start = pos + hlen
    if masked:
        if not must_mask:
            raise FrameError(CloseCode.PROTOCOL_ERROR, "masked frame from server")
        mask: bytes | None = data[start - 4 : start]
    elif must_mask:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "unmasked frame from client")
    else:
        mask = None
    opcode = b0 & 0x0F
    if opcode > OP_BINARY:
        _check_control_frame(opcode, b0, length)
    return opcode, b0 & 0x80, b0 & 0x70, length, mask, start


def _check_control_frame(opcode: int, b0: int, length: int) -> None:
    """Opcodes 3-7 and 11-15 are reserved; control frames follow RFC 6455 §5.5."""
    if opcode < OP_CLOSE or opcode > OP_PONG:
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
    if b0 & 0x70:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set on a control frame")
    if not b0 & 0x80:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
    if length > MAX_CONTROL_PAYLOAD:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes")


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


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Decode a received close payload into (code, reason); 1005 when it carries no code.

    Raises ``FrameError`` for a payload that breaks RFC 6455 §5.5.1 or §7.4.
    """
    n = len(payload)
    if n == 0:
        return CloseCode.NO_STATUS_RCVD, ""
    if n == 1:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not close_code_is_sendable(code):
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CloseCode.INVALID_DATA, "close reason is not UTF-8") from None
    return code, reason
