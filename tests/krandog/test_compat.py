"""krandog_asgi.compat, the public face of the krandog/ subpackage: the names it exports, and
that they are the subpackage's own objects (also through ``krandog_asgi``), not copies."""

from __future__ import annotations

import krandog_asgi
from krandog_asgi import compat
from krandog_asgi.krandog import app, request, response, scope, sender

PUBLIC = {
    "CLOSED": sender,
    "CLOSING": sender,
    "CONNECTING": sender,
    "OPEN": sender,
    "BadRequest": response,
    "HTTPError": response,
    "HTTPRequest": request,
    "Headers": scope,
    "KrandogApp": app,
    "Query": scope,
    "Request": request,
    "WebSocket": sender,
    "WebSocketEvent": request,
    "WebSocketMessage": request,
    "is_krandog_app": app,
    "krandog_app": app,
}


def test_compat_exports_the_public_names_of_the_subpackage() -> None:
    assert compat.__all__ == list(PUBLIC)
    for name, module in PUBLIC.items():
        assert getattr(compat, name) is getattr(module, name), name


def test_the_package_exports_the_same_objects() -> None:
    for name in ("CLOSED", "CLOSING", "CONNECTING", "OPEN", "HTTPError", "KrandogApp"):
        assert getattr(krandog_asgi, name) is getattr(compat, name), name
    assert krandog_asgi.krandog_app is compat.krandog_app
