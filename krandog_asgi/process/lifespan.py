"""The ASGI lifespan protocol: startup and shutdown events, failures, and the shared ``state``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import ASGIApp, Message
    from krandog_asgi.config import LifespanMode

__all__ = ["Lifespan"]

logger = logging.getLogger("krandog_asgi.error")

STATE_TRANSITION_ERROR = "Got invalid state transition on lifespan protocol."


class Lifespan:
    """Runs the app's lifespan task; ``startup``/``shutdown`` return once the app has answered."""

    def __init__(self, app: ASGIApp, mode: LifespanMode, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.receive_queue: asyncio.Queue[Message] = asyncio.Queue()
        self.startup_event = asyncio.Event()
        self.shutdown_event = asyncio.Event()
        self.startup_failed = False
        self.shutdown_failed = False
        self.error_occured = False
        self.should_exit = False
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Start the lifespan task and wait for startup; ``should_exit`` tells if it failed."""
        if self.mode == "off":
            return
        logger.info("Waiting for application startup.")
        self.task = asyncio.get_running_loop().create_task(self.main())
        await self.receive_queue.put({"type": "lifespan.startup"})
        await self.startup_event.wait()
        if self.startup_failed or (self.error_occured and self.mode == "on"):
            logger.error("Application startup failed. Exiting.")
            self.should_exit = True
        else:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.mode == "off" or self.task is None or self.error_occured:
            return
        logger.info("Waiting for application shutdown.")
        await self.receive_queue.put({"type": "lifespan.shutdown"})
        await self.shutdown_event.wait()
        # Startup succeeded, so the app does speak lifespan: an exception now is a failure
        # in either mode.
        if self.shutdown_failed or self.error_occured:
            logger.error("Application shutdown failed. Exiting.")
            self.should_exit = True
        else:
            logger.info("Application shutdown complete.")

    def cancel(self) -> None:
        """Give up on an app whose shutdown handler does not finish."""
        if self.task is not None and not self.task.done():
            self.shutdown_failed = True  # the cancellation is ours: not logged as an app error
            self.task.cancel()

    async def main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            self.error_occured = True
            if self.startup_failed or self.shutdown_failed:
                return
            if self.mode == "auto" and not self.startup_event.is_set():
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
        finally:
            self.startup_event.set()
            self.shutdown_event.set()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            if self.startup_event.is_set() or self.shutdown_event.is_set():
                raise RuntimeError(STATE_TRANSITION_ERROR)
            self.startup_event.set()
        elif kind == "lifespan.startup.failed":
            if self.startup_event.is_set() or self.shutdown_event.is_set():
                raise RuntimeError(STATE_TRANSITION_ERROR)
            self.startup_event.set()
            self.startup_failed = True
            if message.get("message"):
                logger.error(message["message"])
        elif kind == "lifespan.shutdown.complete":
            if not self.startup_event.is_set() or self.shutdown_event.is_set():
                raise RuntimeError(STATE_TRANSITION_ERROR)
            self.shutdown_event.set()
        elif kind == "lifespan.shutdown.failed":
            if not self.startup_event.is_set() or self.shutdown_event.is_set():
                raise RuntimeError(STATE_TRANSITION_ERROR)
            self.shutdown_event.set()
            self.shutdown_failed = True
            if message.get("message"):
                logger.error(message["message"])
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} in lifespan.")

    async def receive(self) -> Message:
        return await self.receive_queue.get()
