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
    FrameError,
    apply_mask,
    build_close_payload,
    build_frame,
    frame_header,
    parse_close_payload,
    parse_header,
    scan_messages,
    unmask,
    unmask_into,
)

__all__ = [
    "CloseReceived",
    "Closing",
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
# From this payload size on, a frame's header and payload are written as two buffers (writev)
# instead of being joined: joining copies the payload, two buffers cost a little more per call.
WRITEV_MIN = 4096
# Frames per message. Autobahn 9.3.1/9.4.1 send 65,537 (4 MiB in 64-byte frames plus an empty
# final one); a flood of 100k tiny fragments is refused with 1009.
DEFAULT_MAX_FRAGMENTS = 100_000


class Side(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


_SERVER = Side.SERVER


class State(enum.IntEnum):
    """The WHATWG ``readyState`` numbering: OPEN, CLOSING (one close frame seen), CLOSED."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Closing(enum.Enum):
    """Where the closing handshake stands (RFC 6455 §7); ``Connection.closing`` holds one.

    Each state says whether frames are still read and whether our close frame is out (after
    it, no data frame may be sent: §5.5.1), as attributes the hot path reads without a call.
    Values: (label, reading, close_sent).
    """

    OPEN = ("open", True, False)
    CLOSE_SENT = ("close sent", True, True)  # reading on for the peer's answer
    CLOSE_RECEIVED = ("close received", False, False)  # ours is still to send
    CLOSED = ("closed", False, True)  # both close frames went through: a clean close
    PEER_FAILED = ("peer failed", False, False)  # the peer broke the protocol; fail() to come
    FAILED = ("failed", False, True)  # fail() ran, or the peer broke it after our close frame

    def __init__(self, _label: str, reading: bool, close_sent: bool) -> None:
        self.reading = reading
        self.close_sent = close_sent


# Module-level aliases: the hot path compares with ``is`` and a global lookup.
OPEN = Closing.OPEN
CLOSE_SENT = Closing.CLOSE_SENT
CLOSE_RECEIVED = Closing.CLOSE_RECEIVED
CLOSED = Closing.CLOSED
PEER_FAILED = Closing.PEER_FAILED
FAILED = Closing.FAILED
# The transitions, by the state they start from (only states that reading or sending a close
# frame can be in appear).
_ON_CLOSE_SENT = {OPEN: CLOSE_SENT, CLOSE_RECEIVED: CLOSED, PEER_FAILED: FAILED}
_ON_CLOSE_RECEIVED = {OPEN: CLOSE_RECEIVED, CLOSE_SENT: CLOSED}
_ON_PEER_ERROR = {OPEN: PEER_FAILED, CLOSE_SENT: FAILED}


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
        "bytes_in",
        "bytes_out",
        "close_rcvd",
        "closing",
        "deflate",
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
        "side",
        "write",
        "writev",
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
        writev: Callable[[tuple[bytes, bytes]], object] | None = None,
    ) -> None:
        self.side = side
        self.write = write
        # Large frames go out as (header, payload) through ``writev`` (a transport's
        # ``writelines``: one writev call), so the payload is not copied behind its header.
        self.writev = writev
        self.max_size = max_size if max_size is not None else 1 << 62
        self.max_fragments = max_fragments if max_fragments is not None else 1 << 62
        self.deflate = deflate
        self.mask_key = (mask_key or _mask_keys) if side is Side.CLIENT else None
        self.buf = b""  # an incomplete frame header or control frame
        # Wire bytes both ways, frames included: the access log's line for a closed connection.
        self.bytes_in = 0
        self.bytes_out = 0
        self.closing = OPEN
        self.close_rcvd: CloseReceived | None = None  # the peer's close frame, once it came
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
        """The WHATWG ``readyState`` of this connection."""
        closing = self.closing
        if closing is OPEN or closing is PEER_FAILED:
            return State.OPEN
        if closing is CLOSE_SENT or closing is CLOSE_RECEIVED:
            return State.CLOSING
        return State.CLOSED

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes, limit: int | None = None) -> list[Event]:
        """Parse bytes from the network; returns the complete events, in order.

        With ``limit``, parsing stops (between frames) once that many events are out; the rest
        stays in ``buf`` until the next call, so a consumer that falls behind can stop the
        intake without the bytes of one large read all turning into queued messages.
        """
        self.bytes_in += len(data)
        if not self.closing.reading:
            return []  # the peer's close frame or protocol error was the last thing we read
        if self.buf:
            data = self.buf + data
            self.buf = b""
        events: list[Event] = []
        if limit is None:
            limit = 1 << 62
        pos = 0
        scan = scan_messages
        if scan is not None and self.frame_remaining < 0 and self.msg_op < 0:
            # The usual read, whole single-frame messages only, costs one C call and no loop.
            pos = scan(data, 0, self.side is _SERVER, self.max_size, limit, events)
            if pos == len(data):
                return events
        try:
            pos = self._parse(data, pos, events, limit)
        except FrameError as err:
            self.closing = _ON_PEER_ERROR[self.closing]
            self._reset_message()
            events.append(ProtocolFailure(err.close_code, err.reason))
            return events
        if pos < len(data) and self.closing.reading:
            self.buf = data[pos:]
        return events

    def _parse(self, data: bytes, pos: int, events: list[Event], limit: int) -> int:
        """Parse frames from ``data[pos:]``; returns how far. Stops at a close frame (RFC 6455
        §5.5.1: nothing follows it), raises ``FrameError`` at a protocol error."""
        n = len(data)
        must_mask = self.side is _SERVER
        scan = scan_messages
        while pos < n:
            if self.frame_remaining >= 0:
                pos = self._read_payload(data, pos, events)
                continue
            if scan is not None and self.msg_op < 0:
                # Whole single-frame messages in C; it stops at the first other frame, which
                # the code below handles (and, for a bad one, raises) as if C had not run.
                pos = scan(data, pos, must_mask, self.max_size, limit, events)
                if pos == n:
                    break
            if len(events) >= limit:
                break
            header = parse_header(data, pos, must_mask)
            if header is None:
                break
            opcode, fin, rsv, length, mask, start = header
            end = start + length
            if opcode >= OP_CLOSE:
                if end > n:
                    break  # a control frame is handled whole
                payload = data[start:end] if mask is None else unmask(data, mask, start, end, 0)
                pos = end
                self._control(opcode, payload, events)
                if opcode == OP_CLOSE:
                    break
            elif fin and not rsv and opcode and end <= n and self.msg_op < 0:
                # Fast path: a whole, unfragmented, uncompressed message is in the buffer.
                if length > self.max_size:
                    raise FrameError(CloseCode.MESSAGE_TOO_BIG, "message too big")
                # One copy from the read buffer, unmasked on the way (C when built).
                payload = data[start:end] if mask is None else unmask(data, mask, start, end, 0)
                pos = end
                if opcode == OP_TEXT:
                    try:
                        events.append(payload.decode("utf-8"))
                    except UnicodeDecodeError as exc:
                        raise FrameError(
                            CloseCode.INVALID_DATA, f"invalid UTF-8: {exc.reason}"
                        ) from None
                else:
                    events.append(payload)
            else:
                self._start_frame(opcode, fin, rsv, length, mask)
                pos = start
                if length == 0:
                    self._payload_chunk(b"", events)
        return pos

    def _start_frame(
        self, opcode: int, fin: int, rsv: int, length: int, mask: bytes | None
    ) -> None:
        """A data frame whose payload is read as it arrives: the rules that need the message in
        progress (RFC 6455 §5.4), the negotiated extensions (§5.2) and the size limits."""
        if opcode == OP_CONT:
            if self.msg_op < 0:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
            if rsv:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set on a continuation")
        else:
            if self.msg_op >= 0:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "new message before the last one ended")
            if rsv and (rsv != 0x40 or self.deflate is None):
                raise FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension")
            self._start_message(opcode, rsv == 0x40)
        self.msg_frames += 1
        if self.msg_frames > self.max_fragments:
            raise FrameError(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
        if self.msg_size + length > self.max_size and (
            not self.msg_compressed or self.msg_size + length > _deflated_bound(self.max_size)
        ):
            # A compressed frame may be a little longer than what it inflates to (stored
            # blocks of incompressible data); the inflated size is checked exactly later.
            raise FrameError(CloseCode.MESSAGE_TOO_BIG, "message too big")
        self.frame_remaining = length
        self.frame_fin = bool(fin)
        self.frame_mask = mask
        self.frame_offset = 0

    def _read_payload(self, data: bytes, pos: int, events: list[Event]) -> int:
        """The next part of a frame whose payload comes over several reads (or several frames).

        Binary data goes straight from the read buffer into the message's bytearray, unmasked
        on the way: one copy per byte until the final ``bytes``.
        """
        take = min(self.frame_remaining, len(data) - pos)
        end = pos + take
        mask = self.frame_mask
        offset = self.frame_offset
        self.frame_offset = offset + take
        self.frame_remaining -= take
        buf = self.msg_bytes
        if buf is not None and not self.msg_compressed:
            if mask is None:
                buf += memoryview(data)[pos:end]
            else:
                unmask_into(buf, data, pos, end, mask, offset)
            self.msg_size += take
            if not self.frame_remaining:
                self.frame_remaining = -1
                if self.frame_fin:
                    events.append(bytes(buf))
                    self._reset_message()
            return end
        chunk = data[pos:end] if mask is None else unmask(data, mask, pos, end, offset)
        self._payload_chunk(chunk, events)
        return end

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
                raise FrameError(code, str(exc)) from None
        self.msg_size += len(chunk)
        if self.msg_op == OP_TEXT:
            assert self.msg_text is not None
            assert self.msg_decoder is not None
            # Validate as the bytes arrive, so invalid UTF-8 fails the connection at once
            # (RFC 6455 §8.1), even in the middle of a frame.
            try:
                text = self.msg_decoder.decode(chunk, last)
            except UnicodeDecodeError as exc:
                raise FrameError(CloseCode.INVALID_DATA, f"invalid UTF-8: {exc.reason}") from None
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
            if not self.closing.close_sent:
                self._write_frame(OP_PONG, payload)
            events.append(Ping(payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            code, reason = parse_close_payload(payload)
            # RFC 6455 §5.5.1: nothing follows a close frame; a message in progress is dropped.
            self.closing = _ON_CLOSE_RECEIVED[self.closing]
            self._reset_message()
            event = CloseReceived(code, reason)
            self.close_rcvd = event
            events.append(event)

    # -- sending ------------------------------------------------------------------------------

    def _write_frame(
        self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False
    ) -> None:
        mask = self.mask_key() if self.mask_key is not None else None
        n = len(payload)
        if n >= WRITEV_MIN and self.writev is not None:
            first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
            if mask is None:
                header = frame_header(first, n)
                self.writev((header, payload))
            else:
                header = frame_header(first, n, True) + mask
                self.writev((header, apply_mask(payload, mask)))
            self.bytes_out += len(header) + n
            return
        frame = build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)
        self.bytes_out += len(frame)
        self.write(frame)

    def send_frame(self, frame: bytes) -> None:
        """Send a data frame built beforehand with ``build_frame`` (the same bytes may go to
        many connections: a broadcast); refused once our close frame is out."""
        if self.closing.close_sent:
            raise InvalidState("the connection is closing")
        self.bytes_out += len(frame)
        self.write(frame)

    def send_text(self, text: str, fragment_size: int | None = None) -> None:
        self.send_message(OP_TEXT, text.encode("utf-8"), fragment_size)

    def send_binary(self, data: bytes, fragment_size: int | None = None) -> None:
        self.send_message(OP_BINARY, data, fragment_size)

    def send_message(self, opcode: int, payload: bytes, fragment_size: int | None = None) -> None:
        """Send one text or binary message, compressed if deflate was negotiated."""
        if self.closing.close_sent:
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
        if self.closing.close_sent:
            raise InvalidState("the connection is closing")
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("ping payload over 125 bytes")
        self._write_frame(OP_PING, data)

    def send_pong(self, data: bytes = b"") -> None:
        if self.closing.close_sent:
            raise InvalidState("the connection is closing")
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("pong payload over 125 bytes")
        self._write_frame(OP_PONG, data)

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake, or answer the peer's close frame. Idempotent."""
        if self.closing.close_sent:
            return
        payload = build_close_payload(code, reason)  # validates before anything is written
        self.closing = _ON_CLOSE_SENT[self.closing]
        self._write_frame(OP_CLOSE, payload)

    def fail(self, code: int = CloseCode.PROTOCOL_ERROR, reason: str = "") -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send a close frame if we can, stop."""
        self._reset_message()
        close_sent = self.closing.close_sent
        self.closing = FAILED
        if not close_sent:
            try:
                payload = build_close_payload(code, reason[:60])
            except ValueError:
                payload = build_close_payload(code)
            self._write_frame(OP_CLOSE, payload)

    def close_code(self) -> tuple[int, str]:
        """The (code, reason) to report to the application once the connection is gone."""
        if self.close_rcvd is not None:
            return self.close_rcvd.code, self.close_rcvd.reason
        return CloseCode.ABNORMAL_CLOSURE, ""
