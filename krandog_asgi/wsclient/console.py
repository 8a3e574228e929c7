"""The terminal side of ``krandog-asgi connect``: where lines come from and where messages go.

Two shapes. On a terminal (``Prompt``) the user types at a ``> `` prompt with readline's line
editing and history, and each message received is printed *above* the line being typed
(``< message``), which is then drawn again: what was typed is never glued to what arrived.
Otherwise (``Plain``) lines are read from a pipe and messages printed one per line, with
``>``/``<`` marks only when stdout is a terminal, so that a script's stdout holds only what the
server sent.

Reading happens in a daemon thread (a blocking ``input()`` works for ttys, pipes and files
alike and never keeps the process alive); lines reach the event loop through a queue.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["HEX_PREVIEW", "Plain", "Prompt", "feeder", "show_message"]

HEX_PREVIEW = 64  # bytes of a binary message shown in hex
PROMPT = "> "

# Control characters a server could send to move the cursor or recolour the terminal.
_CONTROLS = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F] if chr(i) not in "\t\n"}


def show_message(message: str | bytes, binary: str) -> str:
    """Text as is; binary as ``<binary, N bytes: hex...>`` or only its length."""
    if isinstance(message, str):
        return message
    if binary == "length" or len(message) > HEX_PREVIEW:
        preview = "" if binary == "length" else f": {message[:HEX_PREVIEW].hex()}..."
        return f"<binary, {len(message)} bytes{preview}>"
    return f"<binary, {len(message)} bytes: {message.hex()}>"


Feed = Callable[[str | None], None]


class Plain:
    """Lines from a pipe (or ``--execute``), messages one per line on stdout."""

    def __init__(self, binary: str, marks: bool, out: TextIO | None = None) -> None:
        self.binary = binary
        self.marks = marks  # stdout is a terminal: show "> sent" and "< received"
        self.out = out or sys.stdout

    def received(self, message: str | bytes) -> None:
        text = show_message(message, self.binary)
        self.write(f"< {_inert(text)}" if self.marks else text)

    def sent(self, text: str) -> None:
        if self.marks:
            self.write(f"> {_inert(text)}")

    def note(self, text: str) -> None:
        """Something about the connection, not from the server: stderr."""
        print(text, file=sys.stderr, flush=True)

    def say(self, text: str) -> None:
        """An answer to a command (a pong, the help): beside the messages on a terminal,
        else on stderr, so that a piped stdout keeps only what the server sent."""
        if self.marks:
            self.write(text)
        else:
            self.note(text)

    def write(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def start_reading(self, feed: Feed) -> None:
        threading.Thread(target=_read_stdin, args=(feed,), daemon=True).start()

    def restore(self) -> None:
        pass


def _read_stdin(feed: Feed) -> None:
    try:
        for line in sys.stdin:
            feed(line.rstrip("\r\n"))
    finally:
        feed(None)


class PromptState(enum.Enum):
    """Who owns the terminal's last line, as ``Prompt.write`` must know to print above it."""

    IDLE = "idle"  # no readline call: a line printed goes where the cursor is
    DRAWING = "drawing"  # readline is drawing its prompt: it may or may not be on the line yet
    PROMPTING = "prompting"  # readline shows the prompt and owns the line


class Prompt(Plain):
    """An interactive terminal: readline at a ``> `` prompt, messages printed above it."""

    def __init__(self, binary: str, history_file: str | None = None) -> None:
        super().__init__(binary, marks=True)
        import readline  # not at module level: absent on some platforms, needed here only

        self.readline: Any = readline
        self.history_file = os.path.expanduser(history_file) if history_file else None
        self.lock = threading.Lock()
        self.state = PromptState.IDLE
        self.redraw = False  # a line was printed while the prompt was being drawn
        self.saved_tty: Any = None
        try:
            import termios

            self.saved_tty = termios.tcgetattr(sys.stdin.fileno())
        except (ImportError, OSError):
            pass
        readline.set_startup_hook(self._prompt_drawing)
        readline.set_pre_input_hook(self._prompt_shown)
        if self.history_file:
            try:
                readline.read_history_file(self.history_file)
            except OSError:
                pass  # not there yet: created at exit

    def _prompt_drawing(self) -> None:
        """readline's startup hook: it draws the prompt next (on its own thread, GIL released),
        then calls ``_prompt_shown``."""
        with self.lock:
            self.state = PromptState.DRAWING

    def _prompt_shown(self) -> None:
        with self.lock:
            self.state = PromptState.PROMPTING
            if self.redraw:
                # The line above was printed while the prompt was drawn, before or after it:
                # draw it once, where readline's cursor is.
                self.redraw = False
                sys.stdout.write(f"\r\x1b[K{PROMPT}")
                sys.stdout.flush()

    def note(self, text: str) -> None:
        self.write(text)

    def write(self, text: str) -> None:
        """Print a line above the prompt: clear the line, print, draw prompt and buffer again."""
        with self.lock:
            state = self.state
            if state is PromptState.PROMPTING:
                buffer = self.readline.get_line_buffer()
                sys.stdout.write(f"\r\x1b[K{text}\n{PROMPT}{buffer}")
            elif state is PromptState.DRAWING:
                sys.stdout.write(f"\r\x1b[K{text}\n{PROMPT}")
                self.redraw = True  # a second prompt may follow: _prompt_shown cleans up
            else:
                sys.stdout.write(f"{text}\n")
            sys.stdout.flush()

    def sent(self, text: str) -> None:
        pass  # the typed line stays on the screen after its prompt: that is its "> " mark

    def start_reading(self, feed: Feed) -> None:
        threading.Thread(target=self._read_prompt, args=(feed,), daemon=True).start()

    def _read_prompt(self, feed: Feed) -> None:
        try:
            while True:
                try:
                    line = input(PROMPT)
                except EOFError:  # Ctrl-D
                    with self.lock:
                        self.state = PromptState.IDLE
                        sys.stdout.write("\n")
                    return
                with self.lock:
                    self.state = PromptState.IDLE
                feed(line)
        finally:
            feed(None)

    def restore(self) -> None:
        """Give the terminal back as it was: the reading thread may still be inside readline
        (the server closed while the user was typing), with echo off and the line raw."""
        with self.lock:
            if self.state is not PromptState.IDLE:
                sys.stdout.write("\r\x1b[K")
                self.state = PromptState.IDLE
            sys.stdout.flush()
        if self.saved_tty is not None:
            import termios

            try:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved_tty)
            except OSError:
                pass
        if self.history_file:
            try:
                self.readline.write_history_file(self.history_file)
            except OSError as exc:
                print(f"cannot save history to {self.history_file}: {exc}", file=sys.stderr)


def _inert(text: str) -> str:
    """Escape control characters, so that a message cannot drive the terminal; a message of
    several lines is indented under its mark."""
    return text.translate(_CONTROLS).replace("\n", "\n  ")


def feeder(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> Feed:
    """A ``Feed`` for the reading thread: hands each line to the loop; quiet once it closed."""

    def feed(line: str | None) -> None:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:
            pass  # the loop is closed: we are exiting

    return feed
