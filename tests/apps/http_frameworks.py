"""A Starlette app and a FastAPI app for ``tests/test_http_frameworks.py``.

Both use lifespan (with state), JSON bodies, path parameters, streaming and file responses,
background tasks and disconnect detection, the way real applications do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request as FRequest
from fastapi.responses import FileResponse as FFileResponse, StreamingResponse as FStreaming
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

DATA_FILE = os.path.join(tempfile.gettempdir(), f"krandog-test-file-{os.getpid()}.bin")
FILE_BYTES = bytes(range(256)) * 4096  # 1 MiB
BACKGROUND: list[str] = []
DISCONNECTS: list[str] = []


with open(DATA_FILE, "wb") as _fh:  # served by the FileResponse endpoints
    _fh.write(FILE_BYTES)


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan"}
    with contextlib.suppress(OSError):
        os.unlink(DATA_FILE)


# -- Starlette ------------------------------------------------------------------------------


async def s_home(request: Request) -> Response:
    return PlainTextResponse(f"{request.state.greeting} {request.url.path}")


async def s_json(request: Request) -> Response:
    data = await request.json()
    return JSONResponse({"received": data, "method": request.method})


async def s_item(request: Request) -> Response:
    item_id = request.path_params["item_id"]
    return JSONResponse({"item_id": item_id, "q": request.query_params.get("q")})


async def s_stream(request: Request) -> Response:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"part{i};".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(gen(), media_type="text/plain")


async def s_file(request: Request) -> Response:
    return FileResponse(DATA_FILE, filename="data.bin")


async def s_background(request: Request) -> Response:
    tag = request.query_params["tag"]

    async def task() -> None:
        await asyncio.sleep(0.05)
        BACKGROUND.append(tag)

    return PlainTextResponse("queued", background=BackgroundTask(task))


async def s_background_list(request: Request) -> Response:
    return JSONResponse(BACKGROUND)


async def s_form(request: Request) -> Response:
    form = await request.form()
    upload = form["file"]
    content = await upload.read()  # type: ignore[union-attr]
    return JSONResponse({"name": form["name"], "size": len(content)})


async def s_stream_body(request: Request) -> Response:
    total = 0
    chunks = 0
    async for chunk in request.stream():
        total += len(chunk)
        chunks += 1
    return JSONResponse({"total": total, "chunks": chunks})


async def s_disconnect(request: Request) -> Response:
    tag = request.query_params["tag"]
    for _ in range(200):
        if await request.is_disconnected():
            DISCONNECTS.append(tag)
            return PlainTextResponse("gone")
        await asyncio.sleep(0.02)
    return PlainTextResponse("never disconnected")


async def s_disconnects(request: Request) -> Response:
    return JSONResponse(DISCONNECTS)


async def s_error(request: Request) -> Response:
    raise RuntimeError("starlette handler failed")


async def s_endless(request: Request) -> Response:
    tag = request.query_params["tag"]

    async def gen() -> AsyncIterator[bytes]:
        try:
            for _ in range(10_000):
                yield b"x" * 1024
                await asyncio.sleep(0.01)
        finally:
            DISCONNECTS.append(tag)

    return StreamingResponse(gen())


starlette_app = Starlette(
    routes=[
        Route("/", s_home),
        Route("/json", s_json, methods=["POST"]),
        Route("/items/{item_id:int}", s_item),
        Route("/stream", s_stream),
        Route("/file", s_file),
        Route("/background", s_background),
        Route("/background-list", s_background_list),
        Route("/form", s_form, methods=["POST"]),
        Route("/stream-body", s_stream_body, methods=["POST"]),
        Route("/disconnect", s_disconnect),
        Route("/disconnects", s_disconnects),
        Route("/error", s_error),
        Route("/endless", s_endless),
    ],
    lifespan=lifespan,
)


# -- FastAPI --------------------------------------------------------------------------------

fastapi_app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


@fastapi_app.get("/")
async def f_home(request: FRequest) -> dict[str, Any]:
    return {"greeting": request.state.greeting}


@fastapi_app.post("/items")
async def f_create(item: Item) -> dict[str, Any]:
    return {"item": item.model_dump(), "total": item.price * 2}


@fastapi_app.get("/items/{item_id}")
async def f_read(item_id: int, q: str | None = None) -> dict[str, Any]:
    if item_id == 404:
        raise HTTPException(status_code=404, detail="Item not found")
    return {"item_id": item_id, "q": q}


@fastapi_app.get("/sync")
def f_sync() -> dict[str, str]:
    return {"sync": "ok"}


@fastapi_app.get("/stream")
async def f_stream() -> FStreaming:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk{i}\n".encode()

    return FStreaming(gen(), media_type="text/plain")


@fastapi_app.get("/file")
async def f_file() -> FFileResponse:
    return FFileResponse(DATA_FILE)


@fastapi_app.post("/background/{tag}")
async def f_background(tag: str, tasks: BackgroundTasks) -> dict[str, str]:
    def work() -> None:
        BACKGROUND.append("fastapi-" + tag)

    tasks.add_task(work)
    return {"queued": tag}


@fastapi_app.get("/background-list")
async def f_background_list() -> list[str]:
    return BACKGROUND


@fastapi_app.get("/error")
async def f_error() -> None:
    raise RuntimeError("fastapi handler failed")
