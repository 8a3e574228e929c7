"""The lifespan protocol (``--lifespan auto|on|off``): startup/shutdown, failures, ``state``."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.servers import start_server


def run_until_exit(app: str, *flags: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Start a server that is expected to exit on its own; return (exit code, output)."""
    try:
        srv = start_server(app, *flags, env=env, timeout=10)
    except RuntimeError as exc:
        message = str(exc)
    else:
        srv.stop()
        pytest.fail(f"server started although it should not have:\n{srv.log}")
    match = re.search(r"server exited with (-?\d+)", message)
    assert match, message
    return int(match.group(1)), message


def test_startup_and_shutdown_with_state(tmp_path: Path) -> None:
    log = tmp_path / "lifespan.log"
    srv = start_server("http_lifespan:full", env={"LIFESPAN_LOG": str(log)})
    try:
        r = httpx.get(srv.url + "/")
        assert r.text == "[('db', 'connected')]"
        assert "Application startup complete." in srv.log
    finally:
        code = srv.stop(signal.SIGTERM)
    assert code == 0
    lines = log.read_text().splitlines()
    # The lifespan sub-spec has its own version (2.0), separate from the HTTP spec's 2.5.
    assert lines == ["spec_version=2.0", "lifespan.startup", "lifespan.shutdown", "cleanup done"]
    assert "Application shutdown complete." in srv.log


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_exits(mode: str) -> None:
    code, output = run_until_exit("http_lifespan:startup_failed", "--lifespan", mode)
    assert code != 0
    assert "database unreachable" in output
    assert "Application startup failed" in output


def test_startup_exception_with_lifespan_on_exits() -> None:
    code, output = run_until_exit("http_lifespan:startup_raises", "--lifespan", "on")
    assert code != 0
    assert "startup exploded" in output
    assert "Traceback" in output


def test_startup_exception_with_lifespan_auto_continues() -> None:
    """auto: an app that fails on the lifespan scope is treated as not supporting it."""
    srv = start_server("http_lifespan:no_lifespan", "--lifespan", "auto")
    try:
        r = httpx.get(srv.url + "/")
        assert r.status_code == 200
        assert r.text == "[]"
        assert "unsupported" in srv.log.lower()
    finally:
        assert srv.stop() == 0


def test_lifespan_off_never_calls_the_app_with_lifespan(tmp_path: Path) -> None:
    log = tmp_path / "lifespan.log"
    srv = start_server("http_lifespan:full", "--lifespan", "off", env={"LIFESPAN_LOG": str(log)})
    try:
        r = httpx.get(srv.url + "/")
        assert r.text == "[]"  # no startup, so no state
    finally:
        srv.stop()
    assert not log.exists()


def test_no_lifespan_app_with_lifespan_on_exits() -> None:
    code, output = run_until_exit("http_lifespan:no_lifespan", "--lifespan", "on")
    assert code != 0
    assert "unsupported scope type lifespan" in output


def test_app_returning_early_from_lifespan() -> None:
    srv = start_server("http_lifespan:returns_early")
    try:
        assert httpx.get(srv.url + "/").status_code == 200
    finally:
        assert srv.stop() == 0


def test_shutdown_failed_is_reported() -> None:
    srv = start_server("http_lifespan:shutdown_failed")
    httpx.get(srv.url + "/")
    assert srv.stop() == 1  # a failed shutdown is not a clean exit
    assert "flush failed" in srv.log
    assert "Application shutdown failed" in srv.log


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_shutdown_exception_is_reported(mode: str) -> None:
    """Startup completed, so the app speaks lifespan: an exception at shutdown is an error
    with a traceback even in auto mode, not "protocol appears unsupported"."""
    srv = start_server("http_lifespan:shutdown_raises", "--lifespan", mode)
    httpx.get(srv.url + "/")
    assert srv.stop() == 1
    assert "shutdown exploded" in srv.log
    assert "Traceback" in srv.log
    assert "Application shutdown failed" in srv.log
    assert "unsupported" not in srv.log


def test_invalid_state_transition_raises(tmp_path: Path) -> None:
    log = tmp_path / "lifespan.log"
    srv = start_server("http_lifespan:bad_transition", env={"LIFESPAN_LOG": str(log)})
    httpx.get(srv.url + "/")
    assert srv.stop() == 0
    lines = log.read_text().splitlines()
    assert lines[0].startswith("second complete raised")
    assert lines[1] == "lifespan.shutdown"


def test_requests_wait_for_startup() -> None:
    srv = start_server("http_lifespan:slow_startup")
    try:
        # "running on" is only printed after startup completed, so state is always there.
        assert httpx.get(srv.url + "/").text == "[('ready', True)]"
        log = srv.log
        assert log.index("Application startup complete") < log.index("running on")
    finally:
        srv.stop()
