"""One byte in front of each payload on the wire, so a str stays a str and bytes stay bytes
after a trip through a backend that only carries bytes (Redis)."""

from __future__ import annotations

__all__ = ["Payload", "decode", "encode"]

Payload = str | bytes

_TEXT = b"t"
_BINARY = b"b"


def encode(message: Payload) -> bytes:
    if isinstance(message, str):
        return _TEXT + message.encode("utf-8")
    if isinstance(message, bytes | bytearray | memoryview):
        return _BINARY + bytes(message)
    raise TypeError(f"publish() takes str or bytes, not {type(message).__name__}")


def decode(data: bytes) -> Payload:
    """The message ``encode`` made; anything else (a foreign publisher) is passed on as bytes."""
    kind = data[:1]
    if kind == _TEXT:
        return data[1:].decode("utf-8", "replace")
    if kind == _BINARY:
        return data[1:]
    return data
