"""Server-sent events (sse-starlette), multi-MB multipart uploads and Range requests on
Starlette, for ``tests/frameworks/test_sse.py``, ``test_uploads.py`` and ``test_ranges.py``."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

# A file whose every byte says where it is, so any misplaced slice shows.
RANGE_BYTES = b"".join(i.to_bytes(4, "big") for i in range(256 * 1024))  # 1 MiB
RANGE_FILE = os.path.join(tempfile.gettempdir(), f"krandog-range-{os.getpid()}.bin")
SSE_SEEN: list[str] = []

with open(RANGE_FILE, "wb") as _fh:
    _fh.write(RANGE_BYTES)


async def sse_finite(request: Request) -> Response:
    async def events() -> AsyncIterator[ServerSentEvent | dict[str, object]]:
        for i in range(3):
            yield ServerSentEvent(data=f"tick {i}", event="tick", id=str(i))
            await asyncio.sleep(0.01)
        yield {"event": "multi", "data": "line one\nline two"}
        yield ServerSentEvent(data="bye", event="end")

    return EventSourceResponse(events())


async def sse_endless(request: Request) -> Response:
    """Runs until the client goes: sse-starlette cancels the generator on ``http.disconnect``."""
    tag = request.query_params["tag"]

    async def events() -> AsyncIterator[dict[str, object]]:
        i = 0
        try:
            while True:
                yield {"data": f"{tag} {i}", "id": str(i)}
                i += 1
                await asyncio.sleep(0.02)
        except (asyncio.CancelledError, GeneratorExit):
            # GeneratorExit: a cancel that lands while sse-starlette awaits send() (a busy
            # machine) reaches the generator suspended at ``yield``; sse-starlette then
            # closes it with aclose() rather than letting CancelledError through here.
            SSE_SEEN.append("cancelled:" + tag)
            print(f"sse generator cancelled: {tag}", flush=True)
            raise

    return EventSourceResponse(events(), ping=1)


async def sse_seen(request: Request) -> Response:
    return JSONResponse(SSE_SEEN)


async def _digest(upload: UploadFile) -> dict[str, object]:
    sha = hashlib.sha256()
    size = 0
    while chunk := await upload.read(256 * 1024):
        sha.update(chunk)
        size += len(chunk)
    return {"filename": upload.filename, "size": size, "sha256": sha.hexdigest()}


async def upload(request: Request) -> Response:
    async with request.form(max_part_size=64 * 1024 * 1024) as form:
        files = [await _digest(v) for _, v in form.multi_items() if isinstance(v, UploadFile)]
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return JSONResponse({"fields": fields, "files": files})


async def upload_raw(request: Request) -> Response:
    sha = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        sha.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": sha.hexdigest()})


async def ranged_file(request: Request) -> Response:
    return FileResponse(RANGE_FILE, media_type="application/octet-stream")


app = Starlette(
    routes=[
        Route("/sse", sse_finite),
        Route("/sse-endless", sse_endless),
        Route("/sse-seen", sse_seen),
        Route("/upload", upload, methods=["POST"]),
        Route("/upload-raw", upload_raw, methods=["POST"]),
        Route("/file", ranged_file, methods=["GET", "HEAD"]),
    ]
)
