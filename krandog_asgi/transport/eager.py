"""Start an app coroutine as an eager Task where Python has them (3.12+), else a plain Task.

Most HTTP apps answer a simple request without ever waiting: ``await send(...)`` returns at
once while the transport takes the bytes. An eager Task runs that first step at once, inside
the Task (so ``asyncio.current_task()`` is right: anyio cancel scopes, as Starlette's
``is_disconnected`` uses, depend on it), and when it finishes without suspending nothing is
scheduled: no ``call_soon``, no extra loop iteration.

Before 3.12 there is no way to run a step inside a Task that is not scheduled yet; running the
app outside any Task instead breaks ``current_task()``, so those versions keep the plain Task.

The caller picks the moment: never inside a parser callback, where the app could re-enter the
parser, nor inside another app. HTTP calls it from ``ServerState.start_deferred``, once per
loop pass for all the requests read in the pass before.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

__all__ = ["EAGER", "start_eagerly"]

EAGER = sys.version_info >= (3, 12)


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """A Task running ``coro``; on 3.12+ its first step has already run when this returns
    (``task.done()`` if it never suspended)."""
    if EAGER and loop.get_task_factory() is None:
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
    return loop.create_task(coro)
