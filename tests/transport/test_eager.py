"""``transport.eager.start_eagerly``: an eager Task on Python 3.12+, a plain Task before.

Each behaviour runs on asyncio's loop and on uvloop. The eager-only tests say so in their skip
reason when the interpreter has no eager tasks (run them with Python 3.12+).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from krandog_asgi.transport.eager import EAGER, start_eagerly

needs_eager = pytest.mark.skipif(not EAGER, reason="eager tasks need Python 3.12+")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def runner(main: Coroutine[Any, Any, Any]) -> Any:
        loop = LOOPS[request.param]()
        try:
            return loop.run_until_complete(asyncio.wait_for(main, 10))
        finally:
            loop.close()

    return runner


@needs_eager
def test_a_coroutine_that_never_waits_is_done_when_start_eagerly_returns(run: Any) -> None:
    steps: list[str] = []

    async def work() -> None:
        steps.append("ran")

    async def main() -> None:
        task = start_eagerly(asyncio.get_running_loop(), work())
        assert steps == ["ran"]
        assert task.done()

    run(main())


@needs_eager
def test_a_coroutine_that_waits_ran_its_first_step_and_goes_on_in_its_task(run: Any) -> None:
    steps: list[object] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[str] = loop.create_future()

        async def work() -> None:
            steps.append("first step")
            steps.append(await gate)

        task = start_eagerly(loop, work())
        assert steps == ["first step"]
        assert not task.done()
        gate.set_result("value")
        await task
        assert steps == ["first step", "value"]

    run(main())


def test_the_app_sees_its_own_task_as_the_current_task(run: Any) -> None:
    """anyio (Starlette's ``is_disconnected``) cancels ``current_task()``: it must be ours."""
    current: list[asyncio.Task[Any] | None] = []

    async def work() -> None:
        current.append(asyncio.current_task())
        await asyncio.sleep(0)
        current.append(asyncio.current_task())

    async def main() -> None:
        task = start_eagerly(asyncio.get_running_loop(), work())
        await task
        assert current == [task, task]

    run(main())


def test_context_set_by_one_app_stays_with_it(run: Any) -> None:
    seen: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def work(name: str) -> None:
            request_id.set(name)
            await asyncio.sleep(0)
            seen.append(request_id.get())

        tasks = [start_eagerly(loop, work("a")), start_eagerly(loop, work("b"))]
        assert request_id.get() == "-"  # neither leaked into the caller's context
        await asyncio.gather(*tasks)

    run(main())
    assert seen == ["a", "b"]


def test_a_task_factory_set_on_the_loop_is_used(run: Any) -> None:
    made: list[object] = []

    async def work() -> None:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            made.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        await start_eagerly(loop, work())

    run(main())
    assert len(made) == 1
