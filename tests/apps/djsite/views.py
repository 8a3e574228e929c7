"""Views that use what real Django apps use: sync and async views, forms, JSON, uploads,
streaming and file responses, and an async view that sees the client go away."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import AsyncIterator

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

FILE_BYTES = bytes(range(256)) * 2048  # 512 KiB
DATA_FILE = os.path.join(tempfile.gettempdir(), f"krandog-django-file-{os.getpid()}.bin")
CANCELLED: list[str] = []

with open(DATA_FILE, "wb") as _fh:
    _fh.write(FILE_BYTES)


def hello(request: HttpRequest) -> HttpResponse:
    """A sync view: Django runs it in a thread under ASGI."""
    name = request.GET.get("name", "world")
    return HttpResponse(f"hello {name}", content_type="text/plain; charset=utf-8")


async def item(request: HttpRequest, item_id: int) -> JsonResponse:
    return JsonResponse(
        {
            "item_id": item_id,
            "q": request.GET.getlist("q"),
            "scheme": request.scheme,
            "host": request.get_host(),
            "remote": request.META.get("REMOTE_ADDR"),
            "agent": request.headers.get("user-agent"),
        }
    )


@csrf_exempt
def form(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    return JsonResponse({k: request.POST.getlist(k) for k in request.POST})


@csrf_exempt
async def json_echo(request: HttpRequest) -> JsonResponse:
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "invalid JSON"}, status=400)
    return JsonResponse({"received": data, "length": len(request.body)})


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    files = {
        name: {
            "name": f.name,
            "size": f.size,
            "sha256": hashlib.sha256(b"".join(f.chunks())).hexdigest(),
        }
        for name, f in request.FILES.items()
    }
    return JsonResponse({"fields": dict(request.POST.items()), "files": files})


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"part{i};".encode()
            await asyncio.sleep(0.01)

    return StreamingHttpResponse(parts(), content_type="text/plain")


def file(request: HttpRequest) -> FileResponse:
    return FileResponse(open(DATA_FILE, "rb"), as_attachment=True, filename="data.bin")


async def slow(request: HttpRequest) -> HttpResponse:
    """Django 5 cancels the view when the client disconnects: the tag says it happened."""
    tag = request.GET["tag"]
    CANCELLED.append("started:" + tag)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        CANCELLED.append("cancelled:" + tag)
        raise
    return HttpResponse("never cancelled")


def cancelled(request: HttpRequest) -> JsonResponse:
    return JsonResponse(CANCELLED, safe=False)


def ws_disconnects(request: HttpRequest) -> JsonResponse:
    from djsite.consumers import DISCONNECTS

    return JsonResponse(DISCONNECTS, safe=False)


def where(request: HttpRequest) -> JsonResponse:
    """What Django made of the scope's path and root_path (behind a prefix, SCRIPT_NAME)."""
    return JsonResponse(
        {
            "path": request.path,
            "path_info": request.path_info,
            "script_name": request.META["SCRIPT_NAME"],
            "absolute": request.build_absolute_uri(),
        }
    )


def error(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("django view failed")
