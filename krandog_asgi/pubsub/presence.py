"""Presence: who is in a room, across every process that shares the backend.

A name is claimed once cluster-wide (``join`` returns False when another holder has it). The
process that holds a name refreshes it every heartbeat; an entry not refreshed within its TTL
(its process died without saying goodbye) expires, and exactly one surviving process *reaps*
it and tells its ``on_expire`` callbacks, so an app can announce the leave once. After the
backend comes back empty, each holder's next heartbeat (run at once on reconnect) claims its
names again, which rebuilds the room.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from krandog_asgi.pubsub.errors import PresenceError

__all__ = ["ExpireCallback", "MemoryPresenceStore", "Presence", "PresenceStore"]

logger = logging.getLogger("krandog_asgi.error")

ExpireCallback = Callable[[list[str]], Awaitable[None] | None]


class PresenceStore(Protocol):
    """Where entries live: a dict (memory) or Redis. Errors are raised as ``PresenceError``."""

    needs_heartbeat: bool

    async def claim(self, room: str, name: str, token: str, *, refresh: bool) -> bool: ...

    async def refresh(self, room: str, names: list[str], token: str) -> list[str]: ...

    async def release(self, room: str, name: str, token: str) -> None: ...

    async def members(self, room: str) -> list[str]: ...

    async def reap(self, room: str) -> list[str]: ...


class Presence:
    """``broker.presence(room)``: join with a unique name, leave, list the members."""

    __slots__ = ("_callbacks", "_local", "_store", "_token", "room")

    def __init__(self, room: str, store: PresenceStore, token: str) -> None:
        self.room = room
        self._store = store
        self._token = token
        self._local: dict[str, None] = {}  # the names this process holds, in join order
        self._callbacks: list[ExpireCallback] = []

    @property
    def local(self) -> list[str]:
        """The names held by this process."""
        return list(self._local)

    async def join(self, name: str) -> bool:
        """Claim ``name`` in the room; False if anyone (here or elsewhere) holds it."""
        if name in self._local:
            return False
        if not await self._store.claim(self.room, name, self._token, refresh=False):
            return False
        self._local[name] = None
        return True

    async def leave(self, name: str) -> None:
        """Give ``name`` up now (its entry is removed, not left to expire)."""
        if self._local.pop(name, 0) is None:
            await self._store.release(self.room, name, self._token)

    async def members(self) -> list[str]:
        """Every live name in the room, sorted."""
        return sorted(await self._store.members(self.room))

    def on_expire(self, callback: ExpireCallback) -> None:
        """Call ``callback(names)`` (sync or async) when this process reaped expired entries:
        names whose process stopped refreshing them. Each expiry is reported by one process."""
        self._callbacks.append(callback)

    async def _heartbeat(self, reap: bool = True) -> None:
        """Refresh our names (re-creating them if the backend lost them), then reap."""
        for name in await self._store.refresh(self.room, list(self._local), self._token):
            self._local.pop(name, None)
            logger.warning("Presence: %r in room %r is now held elsewhere", name, self.room)
        expired = await self._store.reap(self.room) if reap else []
        if expired:
            for callback in list(self._callbacks):
                try:
                    result = callback(expired)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("Presence on_expire callback for %r failed", self.room)

    async def _leave_all(self) -> None:
        for name in list(self._local):
            try:
                await self.leave(name)
            except PresenceError as exc:
                logger.warning("Presence: could not release %r (%s); it expires", name, exc)

    def __repr__(self) -> str:
        return f"<Presence {self.room!r} local={list(self._local)!r}>"


class MemoryPresenceStore:
    """Rooms in a dict: one process, nothing expires (a dead process takes its rooms along)."""

    needs_heartbeat = False

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, str]] = {}

    async def claim(self, room: str, name: str, token: str, *, refresh: bool) -> bool:
        entries = self._rooms.setdefault(room, {})
        holder = entries.get(name)
        if holder is not None and holder != token:
            return False
        if holder is not None and not refresh:
            return False
        entries[name] = token
        return True

    async def refresh(self, room: str, names: list[str], token: str) -> list[str]:
        return [n for n in names if not await self.claim(room, n, token, refresh=True)]

    async def release(self, room: str, name: str, token: str) -> None:
        entries = self._rooms.get(room, {})
        if entries.get(name) == token:
            del entries[name]

    async def members(self, room: str) -> list[str]:
        return list(self._rooms.get(room, ()))

    async def reap(self, room: str) -> list[str]:
        return []
