"""krandog-asgi: an ASGI server (uvloop + httptools, its own RFC 6455 WebSocket stack),
krandog-style single handlers, and a browser-style WebSocket client.

Names are imported lazily, so ``import krandog_asgi.client`` does not load the server (and
the sans-I/O core never pulls in asyncio).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "WebSocket": "krandog_asgi.client",
    "connect": "krandog_asgi.client",
    "run_until_closed": "krandog_asgi.client",
    "CLOSED": "krandog_asgi.compat",
    "CLOSING": "krandog_asgi.compat",
    "CONNECTING": "krandog_asgi.compat",
    "OPEN": "krandog_asgi.compat",
    "HTTPError": "krandog_asgi.compat",
    "KrandogApp": "krandog_asgi.compat",
    "krandog_app": "krandog_asgi.compat",
    "ClientDisconnected": "krandog_asgi.http.response",
    "Config": "krandog_asgi.config",
    "Server": "krandog_asgi.server",
    "run": "krandog_asgi.server",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # "X as X": an explicit re-export, for mypy --strict users and ruff
    from krandog_asgi.client import (
        WebSocket as WebSocket,
        connect as connect,
        run_until_closed as run_until_closed,
    )
    from krandog_asgi.compat import (
        CLOSED as CLOSED,
        CLOSING as CLOSING,
        CONNECTING as CONNECTING,
        OPEN as OPEN,
        HTTPError as HTTPError,
        KrandogApp as KrandogApp,
        krandog_app as krandog_app,
    )
    from krandog_asgi.config import Config as Config
    from krandog_asgi.http.response import ClientDisconnected as ClientDisconnected
    from krandog_asgi.server import Server as Server, run as run


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'krandog_asgi' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
