"""The ASGI types as the krandog layer takes them.

Looser than ``krandog_asgi.asgi_types`` on purpose: a wrapped handler runs under any ASGI
server, and servers type their scopes and events their own way (uvicorn's are TypedDicts,
which no ``MutableMapping`` parameter accepts). So the scope and received events are ``Any``,
and ``send`` only has to take the plain dicts this layer builds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Message", "Receive", "Scope", "Send"]

Scope = Any
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Message], Awaitable[None]]
