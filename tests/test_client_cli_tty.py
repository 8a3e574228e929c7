"""``krandog-asgi connect`` on a terminal, through a pty: what a person sees (a ``pyte`` screen)
and what the server gets (an independent ``websockets`` server that records every message).

The prompt, the ``<`` marks, a server push arriving while a line is being typed (the typed
line stays whole, on screen and on the wire), history, slash commands, how the session ends.
"""

from __future__ import annotations

import itertools
import os
import pty
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.peers import STEP
from tests.support.recording import RecordingServer

pyte = pytest.importorskip("pyte", reason="pyte (in the test extra) emulates the terminal")

ROOT = Path(__file__).resolve().parents[1]
UP = b"\x1b[A"
_paths = itertools.count(1)


class Terminal:
    """``krandog-asgi connect ARGS`` on a pty, its output fed to an 80x24 pyte screen."""

    def __init__(self, *args: str, home: Path) -> None:
        env = dict(os.environ, TERM="xterm", INPUTRC="/dev/null", HOME=str(home), NO_COLOR="1")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: never returns
            os.chdir(ROOT)
            os.execvpe(
                sys.executable, [sys.executable, "-m", "krandog_asgi", "connect", *args], env
            )
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.status: int | None = None

    def pump(self, seconds: float = 0.05) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # the child exited and the pty closed
                    return
                if not data:
                    return
                self.raw += data
                self.stream.feed(data)
            elif left <= 0:
                return

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display if line.strip()]

    def wait_for(self, check: Callable[[list[str]], bool], timeout: float = STEP) -> list[str]:
        deadline = time.monotonic() + timeout
        while not check(self.lines):
            if time.monotonic() > deadline:
                raise AssertionError("screen never matched:\n" + "\n".join(self.lines))
            self.pump()
        return self.lines

    def wait_for_line(self, text: str) -> list[str]:
        return self.wait_for(lambda lines: text in lines)

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait_exit(self, timeout: float = STEP) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                self.pump()
                return self.status
        raise AssertionError("the client did not exit:\n" + "\n".join(self.lines))

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture(scope="module")
def recording_server() -> Iterator[RecordingServer]:
    with RecordingServer() as srv:
        yield srv


@pytest.fixture
def server(recording_server: RecordingServer, request: pytest.FixtureRequest) -> RecordingServer:
    recording_server.path = f"/{next(_paths)}"
    return recording_server


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(*args: str) -> Terminal:
        term = Terminal(*args, home=tmp_path)
        opened.append(term)
        term.wait_for(lambda lines: bool(lines) and lines[-1] == ">")
        return term

    yield open_terminal
    for term in opened:
        term.close()


def test_prompt_and_marks_for_sent_and_received_lines(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    assert term.lines[0].startswith(f"connected to {server.url}")
    assert "/help" in " ".join(term.lines)
    term.type(b"hello there\r")
    lines = term.wait_for_line("< hello there")
    assert lines[-3:] == ["> hello there", "< hello there", ">"]
    assert server.next_message() == "hello there"


def test_a_push_while_typing_does_not_corrupt_the_typed_line(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    term.type(b"push:0.6:breaking news\r")
    assert server.next_message() == "push:0.6:breaking news"
    term.type(b"half a li")  # no Enter: the push arrives while this is being typed
    lines = term.wait_for_line("< breaking news")
    assert lines[-1] == "> half a li"  # drawn again, whole, under the message
    assert lines[-2] == "< breaking news"
    assert not any("half a li" in line and "news" in line for line in lines)
    term.type(b"ne\r")
    assert server.next_message() == "half a line"  # what was typed, nothing glued to it
    assert term.wait_for_line("< half a line")[-3:] == ["> half a line", "< half a line", ">"]


def test_up_arrow_recalls_history_and_the_history_file_keeps_it(
    server: RecordingServer, terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    history = tmp_path / "history"
    term = terminal(server.url, "--history-file", str(history))
    term.type(b"first\r")
    term.type(b"second\r")
    assert [server.next_message(), server.next_message()] == ["first", "second"]
    term.type(UP + UP + b"\r")
    assert server.next_message() == "first"
    term.type(b"\x04")  # Ctrl-D: close with 1000
    assert term.wait_exit() == 0
    assert server.closes.get(timeout=STEP) == (1000, "")
    assert history.read_text().splitlines()[-3:] == ["first", "second", "first"]

    again = terminal(server.url, "--history-file", str(history))
    again.type(UP + UP + b"\r")  # the previous session's lines
    assert server.next_message() == "second"


def test_close_command_sends_its_code_and_reason(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    term.type(b"/close 4001 done for today\r")
    assert term.wait_exit() == 1  # a code other than 1000/1001: exit status 1
    assert server.closes.get(timeout=STEP) == (4001, "done for today")
    assert "closed: 4001 (application-defined code) 'done for today'" in term.lines


def test_binary_ping_help_and_escaped_slash(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    term.type(b"/binary hex 00ff10\r")
    assert server.next_message() == b"\x00\xff\x10"
    term.wait_for_line("< <binary, 3 bytes: 00ff10>")
    term.type(b"/binary text hi\r")
    assert server.next_message() == b"hi"
    term.type(b"//not a command\r")
    assert server.next_message() == "/not a command"
    term.type(b"/ping\r")
    term.wait_for(lambda lines: any(line.startswith("< pong (") for line in lines))
    term.type(b"/help\r")
    term.wait_for(lambda lines: any("/close [code [reason]]" in line for line in lines))
    term.type(b"/nope\r")
    term.wait_for(lambda lines: any("unknown command /nope" in line for line in lines))
    term.type(b"/close 999\r")
    term.wait_for(lambda lines: any("1000 or 3000-4999, not 999" in line for line in lines))
    assert server.received.empty()  # none of the commands went out as a message
    term.type(b"/close\r")
    assert term.wait_exit() == 0
    assert server.closes.get(timeout=STEP) == (1000, "")


def test_server_closing_ends_the_session_and_gives_the_terminal_back(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    term.type(b"bye:0.3\r")
    term.type(b"unsent")  # typed, never sent: the server closes first
    assert term.wait_exit() == 0
    assert "closed: 1001 (going away) 'later'" in term.lines
    assert server.next_message() == "bye:0.3"
    assert server.received.empty()
    # readline had the terminal in raw mode: echo and line mode are back
    import termios

    attrs = termios.tcgetattr(term.fd)
    assert attrs[3] & termios.ECHO
    assert attrs[3] & termios.ICANON


def test_control_characters_from_the_server_are_shown_not_obeyed(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    term.type(b"red \x16\x1b[31mtext\r")  # Ctrl-V: ESC typed literally
    lines = term.wait_for(lambda lines: any(line.startswith("< red ") for line in lines))
    assert "< red \\x1b[31mtext" in lines


def test_ctrl_c_at_the_prompt_closes_with_1000(
    server: RecordingServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal(server.url)
    term.type(b"typing something")
    term.type(b"\x03")  # the terminal turns it into SIGINT for the client
    assert term.wait_exit() == 0
    assert server.closes.get(timeout=STEP) == (1000, "")
    assert "closed: 1000 (normal closure)" in term.lines


# -- the prompt's bookkeeping, step by step (no pty: readline's part is played by the test) ---


@pytest.fixture
def prompt() -> Iterator[tuple[Any, Any, Any]]:
    """A ``Prompt``, a pyte screen and a stdout feeding it (the test installs it: pytest's
    capture sets ``sys.stdout`` again when the test starts); the readline hooks it sets are
    removed after."""
    import io
    import readline

    from krandog_asgi.wsclient.console import Prompt

    screen = pyte.Screen(80, 24)
    stream = pyte.Stream(screen)

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            stream.feed(text.replace("\n", "\r\n"))  # a tty's onlcr
            return len(text)

    out = Out()
    try:
        yield Prompt("hex"), screen, out
    finally:
        readline.set_startup_hook(None)
        readline.set_pre_input_hook(None)


def _screen_lines(screen: Any) -> list[str]:
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@pytest.mark.parametrize("drawn_first", [True, False], ids=["after-draw", "before-draw"])
def test_a_message_while_readline_draws_its_prompt_leaves_one_prompt_under_it(
    prompt: tuple[Any, Any, Any], drawn_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """readline draws its prompt on its own thread between its startup and pre-input hooks;
    a message printed in that window, before or after the prompt is on the line, must end up
    above a single prompt (CI once showed "> < half a line")."""
    out, screen, stdout = prompt
    monkeypatch.setattr(sys, "stdout", stdout)
    out._prompt_drawing()  # readline's startup hook
    if drawn_first:
        sys.stdout.write("> ")  # readline draws the prompt
    out.write("< news")
    if not drawn_first:
        sys.stdout.write("> ")
    out._prompt_shown()  # readline's pre-input hook
    assert _screen_lines(screen) == ["< news", ">"]
    assert screen.cursor.x == 2
    out.write("< more")  # and later messages go above the prompt as ever
    assert _screen_lines(screen) == ["< news", "< more", ">"]
