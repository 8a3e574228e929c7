"""Batched access lines (``process.access_lines``): the same text ``logging`` writes, whole lines
in writes no larger than ``PIPE_BUF``, written in the loop pass that made them; and every line
through ``logging`` as soon as the setup is not the default one any more.

The server writes them this way under load (tests/test_http_access_log.py reads them from a
real server's stdout, with one worker and with two sharing the pipe).
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections.abc import Callable, Iterator

import pytest
import uvloop

from krandog_asgi.config import Config
from krandog_asgi.process.access_lines import BATCH_LIMIT, AccessLines
from krandog_asgi.process.logs import configure_logging, is_default_handler
from krandog_asgi.process.state import ServerState

FORMAT = '%s - "%s %s HTTP/%s" %s %d %s'


def args_of(i: int, path: str = "/") -> tuple[object, ...]:
    return ("127.0.0.1:50000", "GET", f"{path}?n={i}", "1.1", "200 OK", 13, "0.183ms")


class Stream:
    """A stdout that records every write."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.broken = False

    def write(self, text: str) -> int:
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.writes)


@pytest.fixture(params=[False, True], ids=["plain", "colours"])
def stdout(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Stream]:
    """The default logging setup (with and without colours), writing the access log to a
    recording stream; the logger's own state is put back afterwards."""
    log = logging.getLogger("krandog_asgi.access")
    saved = (log.handlers[:], log.filters[:], log.level, log.propagate, log.disabled)
    stream = Stream()
    monkeypatch.setattr("sys.stdout", stream)
    configure_logging("info", True, use_colors=request.param)
    yield stream
    log.handlers[:], log.filters[:], log.level, log.propagate, log.disabled = saved


def run(main: Callable[[asyncio.AbstractEventLoop], object]) -> None:
    """Run ``main`` with the access logger as the server has it: our handler alone (pytest's
    log capture attaches its own to every logger that does not propagate)."""
    log = logging.getLogger("krandog_asgi.access")
    log.handlers[:] = [h for h in log.handlers if is_default_handler(h)]

    async def outer() -> None:
        result = main(asyncio.get_running_loop())
        if asyncio.iscoroutine(result):
            await result

    uvloop.run(outer())


def through_logging(stream: Stream, *args: object) -> str:
    """What ``logging`` itself writes for the same line."""
    before = len(stream.writes)
    logging.getLogger("krandog_asgi.access").info(FORMAT, *args)
    return "".join(stream.writes[before:])


def test_a_line_is_the_text_logging_writes_and_waits_for_the_end_of_the_loop_pass(
    stdout: Stream,
) -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y"), None, loop)  # type: ignore[arg-type]
        assert state.access_lines is not None  # the default setup: batched
        expected = through_logging(stdout, *args_of(1))
        assert expected.endswith("INFO:     " + FORMAT % args_of(1) + "\n") or (
            expected.endswith("INFO\x1b[0m:     " + FORMAT % args_of(1) + "\n")  # coloured
        )
        stdout.writes.clear()
        state.log_access(FORMAT, *args_of(1))
        state.log_access(FORMAT, *args_of(2))
        assert stdout.writes == []  # not yet: the loop pass is not over
        await asyncio.sleep(0)
        assert stdout.writes == [expected + expected.replace("n=1", "n=2")]  # one write

    run(main)


def test_writes_hold_whole_lines_and_stay_within_pipe_buf(stdout: Stream) -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y"), None, loop)  # type: ignore[arg-type]
        long_path = "/" + "é" * 300  # non-ASCII: more bytes than characters
        sent = [args_of(i, long_path if i % 7 == 0 else "/") for i in range(500)]
        expected = "".join(FORMAT % a for a in sent)
        for a in sent:
            state.log_access(FORMAT, *a)
        await asyncio.sleep(0)
        assert len(stdout.writes) > 1
        for text in stdout.writes:
            assert text.endswith("\n")
            assert len(text.encode()) <= select.PIPE_BUF  # atomic on a pipe
        lines = stdout.text.splitlines()
        assert len(lines) == 500
        prefix = lines[0][: lines[0].index("127.0.0.1")]  # "INFO:     ", coloured or not
        assert "".join(line.removeprefix(prefix) for line in lines) == expected

    run(main)


def test_a_single_line_over_the_limit_is_written_alone(stdout: Stream) -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y"), None, loop)  # type: ignore[arg-type]
        state.log_access(FORMAT, *args_of(1))
        state.log_access(FORMAT, *args_of(2, "/" + "x" * (BATCH_LIMIT + 10)))
        state.log_access(FORMAT, *args_of(3))
        await asyncio.sleep(0)
        assert [text.count("\n") for text in stdout.writes] == [1, 1, 1]

    run(main)


@pytest.mark.parametrize(
    "change",
    [
        "a handler added",
        "a logger filter",
        "a handler filter",
        "another formatter",
        "logger disabled",
        "level raised",
    ],
)
def test_once_the_setup_changes_every_line_goes_through_logging(
    stdout: Stream, change: str
) -> None:
    log = logging.getLogger("krandog_asgi.access")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y"), None, loop)  # type: ignore[arg-type]
        assert state.access_lines is not None
        ours = log.handlers[0]
        if change == "a handler added":
            log.addHandler(Keep())
        elif change == "a logger filter":
            log.addFilter(lambda record: records.append(record) or True)  # type: ignore[func-returns-value]
        elif change == "a handler filter":
            ours.addFilter(lambda record: records.append(record) or True)  # type: ignore[func-returns-value]
        elif change == "another formatter":
            ours.setFormatter(logging.Formatter("custom %(message)s"))
        elif change == "logger disabled":
            log.disabled = True
        else:
            log.setLevel(logging.WARNING)
        state.log_access(FORMAT, *args_of(1))
        before_pass = stdout.text
        await asyncio.sleep(0)
        assert stdout.text == before_pass  # nothing batched: logging handled it at once
        if change in ("logger disabled", "level raised"):
            assert stdout.text == ""
        elif change == "another formatter":
            assert stdout.text == "custom " + FORMAT % args_of(1) + "\n"
        else:
            (record,) = records
            assert (record.msg, record.args) == (FORMAT, args_of(1))  # the record as ever

    run(main)


def test_a_log_config_of_ones_own_is_never_batched(stdout: Stream) -> None:
    configure_logging(
        log_config={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
            "loggers": {"krandog_asgi.access": {"handlers": ["out"], "level": "INFO"}},
        }
    )

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y"), None, loop)  # type: ignore[arg-type]
        assert state.access_lines is None

    run(main)


def test_no_access_log_means_no_batch(stdout: Stream) -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y", access_log=False), None, loop)  # type: ignore[arg-type]
        assert state.access_lines is None

    run(main)


def test_a_broken_stdout_is_reported_as_logging_reports_it(
    stdout: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[logging.LogRecord] = []

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(Config(app="x:y"), None, loop)  # type: ignore[arg-type]
        lines = state.access_lines
        assert isinstance(lines, AccessLines)
        monkeypatch.setattr(lines.handler, "handleError", reported.append)
        stdout.broken = True
        state.log_access(FORMAT, *args_of(1))
        await asyncio.sleep(0)  # the write fails inside the flush: no exception escapes
        (record,) = reported
        assert "n=1" in record.getMessage()
        stdout.broken = False
        state.log_access(FORMAT, *args_of(2))
        await asyncio.sleep(0)
        assert "n=2" in stdout.text  # and the next batch goes out

    run(main)
