"""The slash commands of ``krandog-asgi connect``, parsed without I/O.

A line typed at the prompt is either a message (sent as text) or a command: ``/ping [data]``,
``/binary [text|hex] DATA``, ``/close [code [reason]]``, ``/help``. ``//x`` sends the text
``/x``, so every text stays sendable.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HELP", "Close", "Help", "Ping", "Send", "Usage", "parse_line"]

HELP = """commands:
  /ping [data]              send a ping; the pong is shown with its round-trip time
  /binary [text|hex] DATA   send a binary message: DATA's UTF-8 bytes, or hex digits
  /close [code [reason]]    close with this code (1000, or 3000-4999) and reason
  /help                     this list
  //text                    send "/text" as a text message
Ctrl-D closes with 1000; Up and Down walk the history."""


@dataclass(frozen=True)
class Send:
    """A message to send: ``str`` as text, ``bytes`` as binary."""

    data: str | bytes


@dataclass(frozen=True)
class Ping:
    data: bytes | None


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Usage:
    """A command that cannot be carried out; ``message`` says why, for the user."""

    message: str


Action = Send | Ping | Close | Help | Usage


def parse_line(line: str, commands: bool = True) -> Action:
    """What a line means; without ``commands`` every line is a text message."""
    if not commands or not line.startswith("/"):
        return Send(line)
    if line.startswith("//"):
        return Send(line[1:])
    name, _, rest = line[1:].partition(" ")
    if name == "ping":
        return Ping(rest.encode("utf-8") if rest else None)
    if name == "binary":
        return _binary(rest)
    if name == "close":
        return _close(rest)
    if name == "help":
        return Help()
    return Usage(f"unknown command /{name}: /help lists the commands")


def _binary(rest: str) -> Action:
    mode, _, data = rest.partition(" ")
    if mode == "hex" and data:
        try:
            return Send(bytes.fromhex(data))
        except ValueError:
            return Usage(f"/binary hex: not hex digits: {data!r}")
    if mode == "text" and data:
        return Send(data.encode("utf-8"))
    if not rest:
        return Usage("/binary needs data: /binary [text|hex] DATA")
    return Send(rest.encode("utf-8"))


def _close(rest: str) -> Action:
    code_text, _, reason = rest.strip().partition(" ")
    if not code_text:
        return Close(1000, "")
    try:
        code = int(code_text)
    except ValueError:
        return Usage(f"/close: the code must be a number, not {code_text!r}")
    if code != 1000 and not 3000 <= code <= 4999:
        return Usage(f"/close: a client may close with 1000 or 3000-4999, not {code}")
    if len(reason.encode("utf-8")) > 123:
        return Usage("/close: the reason is longer than 123 bytes")
    return Close(code, reason)
