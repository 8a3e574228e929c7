"""Presence entries in Redis: per room, a sorted set (name -> expiry, in Redis's own clock, so
machines need not agree on the time) and a hash (name -> owner token). Each step is one Lua
script, so a claim, a refresh or a reap is atomic across the cluster.

After Redis restarts empty, names are claimed back by their holders' next heartbeat (each
broker runs one at once when it reconnects). A *new* name in that window could take a name a
holder has not re-claimed yet, so the first claim that finds the epoch key gone (and knows an
earlier epoch: Redis was restarted, not new) opens a settling window; new claims wait it out,
re-claims by holders go through.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from krandog_asgi.pubsub.errors import PresenceError

__all__ = ["RedisPresenceStore"]

# KEYS: entries, owners, epoch, settle
# ARGV: name, token, ttl_ms, refresh (0/1), known epoch ('' if none), fresh epoch, settle_ms
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[6]
  redis.call('SET', KEYS[3], epoch)
  if ARGV[5] ~= '' then redis.call('SET', KEYS[4], '1', 'PX', ARGV[7]) end
end
if ARGV[4] == '0' then
  local wait = redis.call('PTTL', KEYS[4])
  if wait > 0 then return {-1, wait, epoch} end
end
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) > now and redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return {0, 0, epoch}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1, 0, epoch}
"""

# KEYS: entries, owners; ARGV: name, token
_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

# KEYS: entries, owners. Removes and returns the expired names: only one caller gets each.
_REAP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, name in ipairs(gone) do
  redis.call('ZREM', KEYS[1], name)
  redis.call('HDEL', KEYS[2], name)
end
return gone
"""

# KEYS: entries
_MEMBERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""

# A new claim waits out at most this many settling windows, then reports the name taken.
_SETTLE_TRIES = 3


class RedisPresenceStore:
    """``PresenceStore`` on Redis; see the module docstring for the keys."""

    needs_heartbeat = True

    def __init__(self, client: Any, prefix: str, ttl: float, settle: float) -> None:
        self._client = client
        self._prefix = prefix + "presence:"
        self._ttl_ms = int(ttl * 1000)
        # Long enough for every holder to reconnect (its longest backoff) and re-claim: each
        # broker refreshes its names the moment it is connected again.
        self._settle_ms = int(settle * 1000)
        self._epoch = ""
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._reap = client.register_script(_REAP)
        self._members = client.register_script(_MEMBERS)

    def _keys(self, room: str) -> list[str]:
        base = self._prefix + room
        return [base, base + ":owners"]

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except Exception as exc:  # ConnectionError, TimeoutError, OSError
            raise PresenceError(f"presence in Redis failed: {exc}") from exc

    async def claim(self, room: str, name: str, token: str, *, refresh: bool) -> bool:
        keys = [*self._keys(room), self._prefix + "epoch", self._prefix + "settle"]
        for _ in range(_SETTLE_TRIES):
            fresh = secrets.token_hex(8)
            args = [name, token, self._ttl_ms, int(refresh), self._epoch, fresh, self._settle_ms]
            status, wait_ms, epoch = await self._run(self._claim, keys, args)
            self._epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
            if status != -1:
                return bool(status == 1)
            await asyncio.sleep(int(wait_ms) / 1000)
        raise PresenceError("the room is being rebuilt after a Redis restart: try again")

    async def refresh(self, room: str, names: list[str], token: str) -> list[str]:
        """Re-claim this holder's ``names`` in one pipeline; the names now held elsewhere."""
        if not names:
            return []
        keys = [*self._keys(room), self._prefix + "epoch", self._prefix + "settle"]
        fresh = secrets.token_hex(8)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for name in names:
                    args = [name, token, self._ttl_ms, 1, self._epoch, fresh, self._settle_ms]
                    await self._claim(keys=keys, args=args, client=pipe)
                results = await pipe.execute()
        except Exception as exc:
            raise PresenceError(f"presence in Redis failed: {exc}") from exc
        lost = []
        for name, (status, _, epoch) in zip(names, results, strict=True):
            self._epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
            if status != 1:
                lost.append(name)
        return lost

    async def release(self, room: str, name: str, token: str) -> None:
        await self._run(self._release, self._keys(room), [name, token])

    async def members(self, room: str) -> list[str]:
        names = await self._run(self._members, self._keys(room)[:1], [])
        return [n.decode("utf-8") for n in names]

    async def reap(self, room: str) -> list[str]:
        names = await self._run(self._reap, self._keys(room), [])
        return [n.decode("utf-8") for n in names]
