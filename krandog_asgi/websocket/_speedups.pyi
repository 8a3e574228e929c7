from typing import Any

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes, /) -> bytes: ...
def unmask(
    data: bytes | bytearray | memoryview, mask: bytes, start: int, end: int, phase: int, /
) -> bytes: ...
def unmask_into(
    dst: bytearray,
    data: bytes | bytearray | memoryview,
    start: int,
    end: int,
    mask: bytes,
    phase: int,
    /,
) -> None: ...
def scan_messages(
    data: bytes | bytearray | memoryview,
    pos: int,
    must_mask: bool,
    max_size: int,
    limit: int,
    events: list[Any],
    /,
) -> int: ...
