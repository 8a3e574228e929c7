from typing import Any

def fast_scope(
    parser: Any,
    url: bytes,
    headers: list[tuple[bytes, bytes]],
    conn: Any,
    constants: tuple[Any, ...],
    /,
) -> dict[str, Any] | None: ...
def plain_request(
    data: bytes, pos: int, conn: Any, constants: tuple[Any, ...], /
) -> tuple[dict[str, Any], int, bytes | None] | None: ...
def cached_head(
    writer: Any,
    message: Any,
    defaults: bytes,
    head_request: bool,
    http10: bool,
    body_unread: bool,
    caches: tuple[Any, ...],
    /,
) -> bool: ...
