"""permessage-deflate (RFC 7692): negotiation for both sides and the per-connection codec.

No I/O. zlib objects are created on first use and dropped whenever "no context takeover" lets
us, so an idle connection holds no compression memory at all.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from krandog_asgi._abnf import QUOTED_STRING, TOKEN_PATTERN, TOKEN_TEXT

__all__ = [
    "DeflateParams",
    "PerMessageDeflate",
    "client_offer",
    "negotiate_client",
    "negotiate_server",
    "parse_extensions",
]

NAME = "permessage-deflate"
# RFC 7692 §7.2.2: a message ends with an empty stored block that the sender strips.
_TAIL = b"\x00\x00\xff\xff"
# 256 random bytes hold about 162 distinct values; text and structured data far fewer.
_SAMPLE_FROM = 1024
_RANDOM_DISTINCT = 140

_PARAM = re.compile(rf"\s*({TOKEN_PATTERN})\s*(?:=\s*({TOKEN_PATTERN}|{QUOTED_STRING})\s*)?")


class ExtensionHeaderError(ValueError):
    """A ``Sec-WebSocket-Extensions`` header that does not follow RFC 6455 §9.1."""


def parse_extensions(values: Iterable[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse ``Sec-WebSocket-Extensions`` header values into (name, [(param, value)]) offers."""
    offers: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            if not item.strip():
                continue
            parts = _split_outside_quotes(item, ";")
            name = parts[0].strip()
            if not TOKEN_TEXT.fullmatch(name):
                raise ExtensionHeaderError(f"invalid extension name {name!r}")
            params: list[tuple[str, str | None]] = []
            for raw in parts[1:]:
                match = _PARAM.fullmatch(raw)
                if match is None:
                    raise ExtensionHeaderError(f"invalid extension parameter {raw!r}")
                pname, pvalue = match.group(1), match.group(2)
                if pvalue is not None and pvalue.startswith('"'):
                    pvalue = re.sub(r"\\(.)", r"\1", pvalue[1:-1])
                    if not TOKEN_TEXT.fullmatch(pvalue):
                        raise ExtensionHeaderError(f"invalid quoted value {pvalue!r}")
                params.append((pname.lower(), pvalue))
            offers.append((name.lower(), params))
    return offers


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


@dataclass(frozen=True)
class DeflateParams:
    """The four RFC 7692 parameters; ``None`` window bits means "not present"."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    # Only in an offer: "client_max_window_bits" without a value (the client can honour a limit).
    client_max_window_bits_offered: bool = False

    def header_value(self) -> str:
        parts = [NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        elif self.client_max_window_bits_offered:
            parts.append("client_max_window_bits")
        return "; ".join(parts)


def _params_from(params: list[tuple[str, str | None]], *, is_offer: bool) -> DeflateParams:
    """Validate one offer or response; ValueError if it must be declined or refused."""
    seen: set[str] = set()
    values: dict[str, object] = {}
    for name, value in params:
        if name in seen:
            raise ValueError(f"duplicate parameter {name}")
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value")
            values[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None:
                if name == "client_max_window_bits" and is_offer:
                    values["client_max_window_bits_offered"] = True
                    continue
                raise ValueError(f"{name} needs a value")
            if not value.isdigit() or not 8 <= int(value) <= 15 or value != str(int(value)):
                raise ValueError(f"invalid {name} {value!r}")
            values[name] = int(value)
        else:
            raise ValueError(f"unknown parameter {name}")
    return DeflateParams(**values)  # type: ignore[arg-type]


def negotiate_server(
    offers: list[tuple[str, list[tuple[str, str | None]]]],
    *,
    window_bits: int = 12,
    mem_level: int = 5,
) -> tuple[str, PerMessageDeflate] | None:
    """Accept the first acceptable permessage-deflate offer (RFC 7692 §7.1).

    We cap our own window at ``window_bits`` and ask the client for the same cap when it says it
    can honour one: small windows keep per-connection memory low.
    """
    for name, params in offers:
        if name != NAME:
            continue
        try:
            offer = _params_from(params, is_offer=True)
        except ValueError:
            continue
        server_bits = window_bits
        if offer.server_max_window_bits is not None:
            if offer.server_max_window_bits == 8:
                continue  # zlib cannot compress with a 256-byte window; decline this offer
            server_bits = min(server_bits, offer.server_max_window_bits)
        client_bits: int | None = None
        if offer.client_max_window_bits is not None:
            client_bits = min(window_bits, offer.client_max_window_bits)
        elif offer.client_max_window_bits_offered:
            client_bits = window_bits
        response = DeflateParams(
            server_no_context_takeover=offer.server_no_context_takeover,
            client_no_context_takeover=offer.client_no_context_takeover,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
        )
        codec = PerMessageDeflate(
            local_no_context_takeover=response.server_no_context_takeover,
            remote_no_context_takeover=response.client_no_context_takeover,
            local_max_window_bits=server_bits,
            remote_max_window_bits=client_bits or 15,
            mem_level=mem_level,
        )
        return response.header_value(), codec
    return None


def client_offer(window_bits: int | None = 12) -> str:
    """The offer our client sends: it can honour a window limit and asks for one from the server."""
    params = DeflateParams(
        server_max_window_bits=window_bits,
        client_max_window_bits_offered=True,
    )
    return params.header_value()


def negotiate_client(
    offers: list[tuple[str, list[tuple[str, str | None]]]],
    *,
    window_bits: int | None = 12,
    mem_level: int = 5,
) -> PerMessageDeflate:
    """Check the server's response to ``client_offer`` (RFC 7692 §7.2); ValueError if invalid."""
    if len(offers) != 1 or offers[0][0] != NAME:
        raise ValueError("unexpected extension in the handshake response")
    response = _params_from(offers[0][1], is_offer=False)
    server_bits = response.server_max_window_bits
    if server_bits is None:
        server_bits = 15
    elif window_bits is not None and server_bits > window_bits:
        raise ValueError("server_max_window_bits larger than offered")
    client_bits = response.client_max_window_bits or 15
    if client_bits == 8:
        # zlib cannot compress with a 256-byte window, so we cannot honour this limit.
        raise ValueError("client_max_window_bits=8 is not supported")
    return PerMessageDeflate(
        local_no_context_takeover=response.client_no_context_takeover,
        remote_no_context_takeover=response.server_no_context_takeover,
        local_max_window_bits=client_bits,
        remote_max_window_bits=server_bits,
        mem_level=mem_level,
    )


class DecompressionError(ValueError):
    """Invalid deflate data, or a message that inflates beyond the size limit."""

    def __init__(self, message: str, too_big: bool = False) -> None:
        super().__init__(message)
        self.too_big = too_big


class PerMessageDeflate:
    """The negotiated codec of one connection, seen from our side (local = what we send)."""

    __slots__ = (
        "compressor",
        "decompressor",
        "local_max_window_bits",
        "local_no_context_takeover",
        "mem_level",
        "remote_max_window_bits",
        "remote_no_context_takeover",
    )

    def __init__(
        self,
        *,
        local_no_context_takeover: bool,
        remote_no_context_takeover: bool,
        local_max_window_bits: int,
        remote_max_window_bits: int,
        mem_level: int = 5,
    ) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = max(remote_max_window_bits, 9)
        self.mem_level = mem_level
        self.compressor: zlib._Compress | None = None
        self.decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes) -> bytes | None:
        """Compress one whole message (RFC 7692 §7.2.1), or None to send it uncompressed.

        Data that looks random (already compressed: images, archives, ciphertext) is sent as
        it is, which RFC 7692 §6 allows: deflating 64 KiB of it costs milliseconds and saves
        nothing. The check samples the start of the message and leaves the compressor's
        context untouched, so the peer's window stays in step.
        """
        if len(data) >= _SAMPLE_FROM and len(set(data[:256])) >= _RANDOM_DISTINCT:
            return None
        comp = self.compressor
        if comp is None:
            comp = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION,
                zlib.DEFLATED,
                -self.local_max_window_bits,
                self.mem_level,
            )
        out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
        if self.local_no_context_takeover:
            self.compressor = None
        else:
            self.compressor = comp
        if out.endswith(_TAIL):
            out = out[:-4]
        return out or b"\x00"

    def decompress(self, chunk: bytes, limit: int, end: bool) -> bytes:
        """Inflate part of a message; at most ``limit`` bytes of output, else DecompressionError.

        ``end`` marks the last chunk of the message (the stripped tail is fed back then).
        """
        dec = self.decompressor
        if dec is None:
            dec = self.decompressor = zlib.decompressobj(-self.remote_max_window_bits)
        # zlib reads max_length=0 as "unlimited", so always allow at least one byte to detect
        # an overflow.
        limit = max(limit, 0) + 1
        try:
            out = dec.decompress(chunk, limit)
            if end and not dec.unconsumed_tail and len(out) < limit:
                out += dec.decompress(_TAIL, limit - len(out))
        except zlib.error as exc:
            self.decompressor = None
            # zlib says "Error -3 while decompressing data: <what>"; only <what> fits a close
            # reason (the connection truncates reasons to 60 bytes).
            detail = str(exc).rpartition(": ")[2] or str(exc)
            raise DecompressionError(f"invalid compressed data: {detail}") from None
        if dec.unconsumed_tail or len(out) >= limit:
            self.decompressor = None
            raise DecompressionError("message inflates beyond the size limit", too_big=True)
        if dec.eof:
            # The sender ended the deflate stream with a BFINAL block (RFC 7692 §7.2.3.3):
            # only our own appended tail may follow it, and the next message starts afresh.
            if not _TAIL.startswith(dec.unused_data):
                self.decompressor = None
                raise DecompressionError("data after the end of the deflate stream")
            if end:
                self.decompressor = None
        elif end and self.remote_no_context_takeover:
            self.decompressor = None
        return out
