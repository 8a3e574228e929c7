"""``process.supervisor`` in memory: what the reloader asks of watchfiles, and the health
check's bookkeeping (the real processes: ``tests/test_cli_process.py``)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from krandog_asgi.config import Config
from krandog_asgi.process import supervisor


class _FakeWorker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stopped = False

    def stop(self, timeout: float) -> None:
        self.stopped = True


@pytest.mark.parametrize(("delay", "step"), [(0.25, 250), (1.5, 1500), (0.0, 1)])
def test_reload_delay_is_the_quiet_time_watchfiles_waits_for(
    monkeypatch: pytest.MonkeyPatch, delay: float, step: int
) -> None:
    calls: list[dict[str, Any]] = []

    def watch(*paths: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return iter(())

    monkeypatch.setitem(sys.modules, "watchfiles", types.SimpleNamespace(watch=watch))
    monkeypatch.setattr(supervisor, "_Worker", _FakeWorker)
    monkeypatch.setattr(supervisor._Signals, "install", lambda self: None)
    config = Config(app="m:app", port=0, reload=True, reload_delay=delay)
    assert supervisor.run_reloader(config, lambda *a: None) == 0
    (kwargs,) = calls
    assert kwargs["step"] == step


class _Pipe:
    """The supervisor's end of a worker's pipe, with the worker's answers scripted."""

    def __init__(self) -> None:
        self.inbox: list[bytes] = []
        self.sent: list[bytes] = []

    def poll(self) -> bool:
        return bool(self.inbox)

    def recv_bytes(self) -> bytes:
        return self.inbox.pop(0)

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


def test_health_check_pings_only_a_ready_worker_and_times_out_an_unanswered_ping() -> None:
    worker = object.__new__(supervisor._Worker)
    pipe = worker.pipe = _Pipe()
    worker.ready = False
    worker.ping_sent = 0.0
    assert worker.healthy(100.0, 5.0)  # still starting: never pinged, never failed
    assert pipe.sent == []
    pipe.inbox.append(supervisor.READY)
    assert worker.healthy(101.0, 5.0)
    assert pipe.sent == [supervisor.PING]
    assert worker.healthy(105.9, 5.0)  # not answered yet, but within the timeout
    assert pipe.sent == [supervisor.PING]  # one ping at a time
    pipe.inbox.append(supervisor.PONG)
    assert worker.healthy(106.0, 5.0)  # answered: the next ping goes out
    assert pipe.sent == [supervisor.PING, supervisor.PING]
    assert not worker.healthy(111.0, 5.0)  # 5 s without an answer
