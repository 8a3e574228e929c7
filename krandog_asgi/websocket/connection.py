"""The sans-I/O WebSocket connection (RFC 6455 §5-§7), shared by the server and the client.

No asyncio, no sockets: bytes go in through ``receive_data``, which returns events; frames go out
through the ``write`` callable given at construction. Errors by the peer never raise: they end
parsing and surface as a ``ProtocolFailure`` event *after* the messages that preceded them, so
the I/O layer can let the application see those messages first and then call ``fail()``.
Likewise a peer's close frame is a ``CloseReceived`` event; the I/O layer answers it with
``send_close()`` once the application has caught up (RFC 6455 §5.5.1 lets the reply wait).

Events are ``str`` (a text message), ``bytes`` (a binary message), ``Ping``, ``Pong``,
``CloseReceived`` and ``ProtocolFailure``. Messages are the data themselves, which keeps the
hot path free of wrapper objects.
"""

from __future__ import annotations

import codecs
import enum
import os
from collections.abc import Callable

from krandog_asgi.websocket.deflate import DecompressionError, PerMessageDeflate
from krandog_asgi.websocket.frames import (
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    InvalidClosePayload,
    apply_mask,
    build_close_payload,
    build_frame,
    parse_close_payload,
    rotate_mask,
)

__all__ = [
    "CloseReceived",
    "Connection",
    "Event",
    "InvalidState",
    "Ping",
    "Pong",
    "ProtocolFailure",
    "Side",
    "State",
]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
# Frames per message. Autobahn 9.3.1/9.4.1 send 65,537 (4 MiB in 64-byte frames plus an empty
# final one); a flood of 100k tiny fragments is refused with 1009.
DEFAULT_MAX_FRAGMENTS = 100_000


class Side(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


class State(enum.IntEnum):
    """The WHATWG ``readyState`` numbering: OPEN, CLOSING (one close frame seen), CLOSED."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class InvalidState(Exception):
    """Local misuse: sending after the close frame went out."""


class Ping:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Ping({self.data!r})"


class Pong:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Pong({self.data!r})"


class CloseReceived:
    """The peer's close frame: answer with ``send_close()`` (1005 means "no code given")."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"CloseReceived({self.code}, {self.reason!r})"


class ProtocolFailure:
    """The peer broke the protocol; nothing after this was parsed. Answer with ``fail()``."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"ProtocolFailure({self.code}, {self.reason!r})"


Event = str | bytes | Ping | Pong | CloseReceived | ProtocolFailure


class _PeerError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _MaskKeys:
    """Client masking keys from the OS CSPRNG (RFC 6455 §5.3), fetched 4 KiB at a time."""

    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def __call__(self) -> bytes:
        pos = self.pos
        if pos + 4 > len(self.buf):
            self.buf, pos = os.urandom(4096), 0
        self.pos = pos + 4
        return self.buf[pos : pos + 4]


_mask_keys = _MaskKeys()


def _deflated_bound(size: int) -> int:
    """The most bytes ``size`` bytes of incompressible data take once deflated: 5 bytes per
    stored block, blocks as small as 128 bytes at memLevel 1, so at most ~4 %."""
    return size + (size >> 4) + 64


class Connection:
    """One WebSocket connection after the opening handshake."""

    __slots__ = (
        "buf",
        "close_rcvd",
        "close_sent",
        "deflate",
        "failed",
        "frame_fin",
        "frame_mask",
        "frame_offset",
        "frame_remaining",
        "mask_key",
        "max_fragments",
        "max_size",
        "msg_bytes",
        "msg_compressed",
        "msg_decoder",
        "msg_frames",
        "msg_op",
        "msg_size",
        "msg_text",
        "reading",
        "side",
        "write",
    )

    def __init__(
        self,
        side: Side,
        write: Callable[[bytes], object],
        *,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
        deflate: PerMessageDeflate | None = None,
        mask_key: Callable[[], bytes] | None = None,
    ) -> None:
        self.side = side
        self.write = write
        self.max_size = max_size if max_size is not None else 1 << 62
        self.max_fragments = max_fragments if max_fragments is not None else 1 << 62
        self.deflate = deflate
        self.mask_key = (mask_key or _mask_keys) if side is Side.CLIENT else None
        self.buf = b""  # an incomplete frame header or control frame
        self.reading = True
        self.close_sent = False
        self.close_rcvd: CloseReceived | None = None
        self.failed = False
        # the frame being read (frame_remaining < 0: between frames)
        self.frame_remaining = -1
        self.frame_fin = False
        self.frame_mask: bytes | None = None
        self.frame_offset = 0
        # the message being reassembled (msg_op < 0: none)
        self.msg_op = -1
        self.msg_compressed = False
        self.msg_size = 0
        self.msg_frames = 0
        self.msg_bytes: bytearray | None = None
        self.msg_text: list[str] | None = None
        self.msg_decoder: codecs.IncrementalDecoder | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        if self.failed or (self.close_sent and self.close_rcvd is not None):
            return State.CLOSED
        if self.close_sent or self.close_rcvd is not None:
            return State.CLOSING
        return State.OPEN

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes, limit: int | None = None) -> list[Event]:
        """Parse bytes from the network; returns the complete events, in order.

        With ``limit``, parsing stops (between frames) once that many events are out; the rest
        stays in ``buf`` until the next call, so a consumer that falls behind can stop the
        intake without the bytes of one large read all turning into queued messages.
        """
        if not self.reading:
            return []
        if self.buf:
            data = self.buf + data
            self.buf = b""
        events: list[Event] = []
        try:
            pos = self._parse(data, events, limit if limit is not None else 1 << 62)
        except _PeerError as err:
            self.reading = False
            self._reset_message()
            events.append(ProtocolFailure(err.code, err.reason))
            return events
        if pos < len(data) and self.reading:
            self.buf = data[pos:]
        return events

    def _parse(self, data: bytes, events: list[Event], limit: int) -> int:
        n = len(data)
        pos = 0
        server = self.side is Side.SERVER
        while pos < n and self.reading:
            if self.frame_remaining >= 0:
                pos = self._read_payload(data, pos, events)
                continue
            if len(events) >= limit:
                break
            # -- frame header (RFC 6455 §5.2) --
            if n - pos < 2:
                break
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            masked = b1 & 0x80
            hlen = 6 if masked else 2
            if length == 126:
                hlen += 2
                if n - pos < hlen:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length == 127:
                hlen += 8
                if n - pos < hlen:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                if length >> 63:
                    raise _PeerError(CloseCode.PROTOCOL_ERROR, "frame length with the top bit set")
            elif n - pos < hlen:
                break
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            # RFC 6455 §5.1: a client MUST mask, a server MUST NOT.
            if server:
                if not masked:
                    raise _PeerError(CloseCode.PROTOCOL_ERROR, "unmasked frame from client")
            elif masked:
                raise _PeerError(CloseCode.PROTOCOL_ERROR, "masked frame from server")
            mask = data[pos + hlen - 4 : pos + hlen] if masked else None

            if opcode >= 8:
                # RFC 6455 §5.5: control frames are never fragmented and carry <= 125 bytes.
                if opcode > OP_PONG:
                    raise _PeerError(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
                if b0 & 0x70:
                    raise _PeerError(
                        CloseCode.PROTOCOL_ERROR, "reserved bits set on a control frame"
                    )
                if not fin:
                    raise _PeerError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
                if length > MAX_CONTROL_PAYLOAD:
                    raise _PeerError(
                        CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes"
                    )
                end = pos + hlen + length
                if end > n:
                    break  # wait for the whole control frame
                payload = data[pos + hlen : end]
                if mask is not None:
                    payload = apply_mask(payload, mask)
                pos = end
                self._control(opcode, payload, events)
                continue

            # -- data frame --
            rsv = b0 & 0x70
            if opcode == OP_CONT:
                if self.msg_op < 0:
                    raise _PeerError(
                        CloseCode.PROTOCOL_ERROR, "continuation frame without a message"
                    )
                if rsv:
                    raise _PeerError(
                        CloseCode.PROTOCOL_ERROR, "reserved bits set on a continuation"
                    )
            elif opcode in (OP_TEXT, OP_BINARY):
                if self.msg_op >= 0:
                    raise _PeerError(
                        CloseCode.PROTOCOL_ERROR, "new message before the last one ended"
                    )
                if rsv and (rsv != 0x40 or self.deflate is None):
                    raise _PeerError(
                        CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension"
                    )
                compressed = rsv == 0x40
                if not compressed and fin and length <= n - pos - hlen:
                    # Fast path: a whole, unfragmented, uncompressed message is in the buffer.
                    if length > self.max_size:
                        raise _PeerError(CloseCode.MESSAGE_TOO_BIG, "message too big")
                    end = pos + hlen + length
                    payload = data[pos + hlen : end]
                    if mask is not None:
                        payload = apply_mask(payload, mask)
                    pos = end
                    if opcode == OP_TEXT:
                        try:
                            events.append(payload.decode("utf-8"))
                        except UnicodeDecodeError as exc:
                            raise _PeerError(
                                CloseCode.INVALID_DATA, f"invalid UTF-8: {exc.reason}"
                            ) from None
                    else:
                        events.append(payload)
                    continue
                self._start_message(opcode, compressed)
            else:
                raise _PeerError(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
            self.msg_frames += 1
            if self.msg_frames > self.max_fragments:
                raise _PeerError(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
            if self.msg_size + length > self.max_size and (
                not self.msg_compressed or self.msg_size + length > _deflated_bound(self.max_size)
            ):
                # A compressed frame may be a little longer than what it inflates to (stored
                # blocks of incompressible data); the inflated size is checked exactly later.
                raise _PeerError(CloseCode.MESSAGE_TOO_BIG, "message too big")
            pos += hlen
            self.frame_remaining = length
            self.frame_fin = bool(fin)
            self.frame_mask = mask
            self.frame_offset = 0
            if length == 0:
                self._payload_chunk(b"", events)
        return pos

    def _read_payload(self, data: bytes, pos: int, events: list[Event]) -> int:
        take = min(self.frame_remaining, len(data) - pos)
        chunk = data[pos : pos + take]
        mask = self.frame_mask
        if mask is not None:
            chunk = apply_mask(chunk, rotate_mask(mask, self.frame_offset))
        self.frame_offset += take
        self.frame_remaining -= take
        self._payload_chunk(chunk, events)
        return pos + take

    def _start_message(self, opcode: int, compressed: bool) -> None:
        self.msg_op = opcode
        self.msg_compressed = compressed
        self.msg_size = 0
        self.msg_frames = 0
        if opcode == OP_TEXT:
            self.msg_text = []
            self.msg_decoder = _utf8_decoder()
        else:
            self.msg_bytes = bytearray()

    def _reset_message(self) -> None:
        self.msg_op = -1
        self.msg_text = None
        self.msg_bytes = None
        self.msg_decoder = None
        self.frame_remaining = -1

    def _payload_chunk(self, chunk: bytes, events: list[Event]) -> None:
        """Feed part of a data frame's payload into the message being reassembled."""
        frame_done = self.frame_remaining == 0
        last = frame_done and self.frame_fin
        if frame_done:
            self.frame_remaining = -1
        if self.msg_compressed:
            assert self.deflate is not None
            try:
                chunk = self.deflate.decompress(chunk, self.max_size - self.msg_size, last)
            except DecompressionError as exc:
                code = CloseCode.MESSAGE_TOO_BIG if exc.too_big else CloseCode.INVALID_DATA
                raise _PeerError(code, str(exc)) from None
        self.msg_size += len(chunk)
        if self.msg_op == OP_TEXT:
            assert self.msg_text is not None
            assert self.msg_decoder is not None
            # Validate as the bytes arrive, so invalid UTF-8 fails the connection at once
            # (RFC 6455 §8.1), even in the middle of a frame.
            try:
                text = self.msg_decoder.decode(chunk, last)
            except UnicodeDecodeError as exc:
                raise _PeerError(CloseCode.INVALID_DATA, f"invalid UTF-8: {exc.reason}") from None
            if text:
                self.msg_text.append(text)
            if last:
                events.append("".join(self.msg_text))
                self._reset_message()
        else:
            assert self.msg_bytes is not None
            self.msg_bytes += chunk
            if last:
                events.append(bytes(self.msg_bytes))
                self._reset_message()

    def _control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == OP_PING:
            # RFC 6455 §5.5.2: answer a ping with a pong carrying the same data, unless we
            # already sent our close frame.
            if not self.close_sent:
                self._write_frame(OP_PONG, payload)
            events.append(Ping(payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            try:
                code, reason = parse_close_payload(payload)
            except InvalidClosePayload as exc:
                raise _PeerError(exc.close_code, str(exc)) from None
            # RFC 6455 §5.5.1: nothing follows a close frame; a message in progress is dropped.
            self.reading = False
            self._reset_message()
            event = CloseReceived(code, reason)
            self.close_rcvd = event
            events.append(event)

    # -- sending ------------------------------------------------------------------------------

    def _write_frame(
        self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False
    ) -> None:
        mask = self.mask_key() if self.mask_key is not None else None
        self.write(build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask))

    def send_text(self, text: str, fragment_size: int | None = None) -> None:
        self.send_message(OP_TEXT, text.encode("utf-8"), fragment_size)

    def send_binary(self, data: bytes, fragment_size: int | None = None) -> None:
        self.send_message(OP_BINARY, data, fragment_size)

    def send_message(self, opcode: int, payload: bytes, fragment_size: int | None = None) -> None:
        """Send one text or binary message, compressed if deflate was negotiated."""
        if self.close_sent or self.failed:
            raise InvalidState("the connection is closing")
        rsv1 = False
        if self.deflate is not None and payload:
            compressed = self.deflate.compress(payload)
            if compressed is not None:
                payload = compressed
                rsv1 = True
        if fragment_size is None or len(payload) <= fragment_size:
            self._write_frame(opcode, payload, True, rsv1)
            return
        view = memoryview(payload)
        first = True
        for start in range(0, len(payload), fragment_size):
            part = bytes(view[start : start + fragment_size])
            last = start + fragment_size >= len(payload)
            self._write_frame(opcode if first else OP_CONT, part, last, rsv1 and first)
            first = False

    def send_ping(self, data: bytes = b"") -> None:
        if self.close_sent or self.failed:
            raise InvalidState("the connection is closing")
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("ping payload over 125 bytes")
        self._write_frame(OP_PING, data)

    def send_pong(self, data: bytes = b"") -> None:
        if self.close_sent or self.failed:
            raise InvalidState("the connection is closing")
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("pong payload over 125 bytes")
        self._write_frame(OP_PONG, data)

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake, or answer the peer's close frame. Idempotent."""
        if self.close_sent or self.failed:
            return
        payload = build_close_payload(code, reason)  # validates before anything is written
        self.close_sent = True
        self._write_frame(OP_CLOSE, payload)

    def fail(self, code: int = CloseCode.PROTOCOL_ERROR, reason: str = "") -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send a close frame if we can, stop."""
        self.reading = False
        self._reset_message()
        if not self.close_sent and not self.failed:
            self.close_sent = True
            try:
                payload = build_close_payload(code, reason[:60])
            except ValueError:
                payload = build_close_payload(code)
            self._write_frame(OP_CLOSE, payload)
        self.failed = True

    def close_code(self) -> tuple[int, str]:
        """The (code, reason) to report to the application once the connection is gone."""
        if self.close_rcvd is not None:
            return self.close_rcvd.code, self.close_rcvd.reason
        return CloseCode.ABNORMAL_CLOSURE, ""
