"""``krandog-asgi connect URL``: a wscat-like client for trying a WebSocket server by hand.

On a terminal it is a prompt (``> ``) with line editing, history and slash commands
(``/ping``, ``/binary``, ``/close``, ``/help``); messages received are shown above the line
being typed as ``< message``. With piped input (or ``--execute``) each line is sent as a text
message, the replies are waited for (as many as the lines sent, or ``--wait`` seconds without
a message), and the connection is closed with 1000; stdout then holds only what the server
sent, and status lines go to stderr. The exit status tells how the connection ended.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
import threading
import time
from collections.abc import Sequence

from krandog_asgi._cliparse import ShortErrorParser
from krandog_asgi.wsclient.commands import HELP, Close, Help, Ping, Send, Usage, parse_line
from krandog_asgi.wsclient.connection import ClientConnection, connect
from krandog_asgi.wsclient.console import HEX_PREVIEW, Plain, Prompt, feeder
from krandog_asgi.wsclient.errors import (
    NORMAL_CLOSE_CODES,
    ConnectionClosed,
    WebSocketError,
    close_code_meaning,
)

__all__ = ["build_parser", "main"]

EXIT_NORMAL = 0  # closed with 1000, 1001 or an empty close frame
EXIT_ABNORMAL = 1  # closed with another code, or the connection was lost (1006)
EXIT_USAGE = 2  # bad command line (argparse)
EXIT_CONNECT = 3  # no connection: bad URL, refused, handshake refused, TLS error, timeout
EXIT_INTERRUPTED = 130  # Ctrl-C before the connection was open (128 + SIGINT, as shells do)
SETTLE = 0.1  # once every line has its reply: quiet time that lets a last message arrive


def _header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), val.strip()


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    p = ShortErrorParser(
        prog="krandog-asgi connect",
        usage="krandog-asgi connect [-c] URL [options]",
        description="Open a WebSocket connection. On a terminal: a prompt with history and "
        "slash commands (/help lists them). Piped: send each line of stdin, wait for the "
        "replies, close with 1000.",
        epilog="exit status: 0 closed normally (1000, 1001, no status), 1 closed with another "
        "code or connection lost, 2 usage error, 3 could not connect, 130 interrupted (Ctrl-C) "
        "while connecting",
    )
    add = p.add_argument
    add("url", nargs="?", help="ws:// or wss:// URL (IPv6 literals in brackets: ws://[::1]:8000/)")
    add("-c", "--connect", dest="connect_url", metavar="URL", help="the URL, as wscat takes it")
    add(
        "-x",
        "--execute",
        action="append",
        default=[],
        metavar="MESSAGE",
        help="send this message once connected (repeatable), wait for the replies, close; "
        "stdin is not read",
    )
    add(
        "-w",
        "--wait",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="with piped input or -x: after the last line, close once every line got a reply "
        "or nothing came for this long; 0 closes at once (default: 2)",
    )
    add(
        "--slash",
        action="store_true",
        help="slash commands in piped input and -x too (on a terminal they always work)",
    )
    add(
        "--history-file",
        default=None,
        metavar="FILE",
        help="keep the prompt's history in this file across sessions",
    )
    _add_handshake_options(p)
    return p


def _add_handshake_options(p: argparse.ArgumentParser) -> None:
    """What the opening handshake offers and checks, and the limits of the connection."""
    add = p.add_argument
    add(
        "-s",
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="offer this subprotocol (repeatable)",
    )
    add(
        "-H",
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    add("-o", "--origin", default=None, help="send this Origin header")
    add(
        "-k",
        "--insecure",
        action="store_true",
        help="wss://: do not verify the server certificate (self-signed servers)",
    )
    add(
        "--ca-file",
        default=None,
        metavar="PEM",
        help="wss://: verify the server against these CA certificates instead of the system's",
    )
    add("--no-compression", action="store_true", help="do not offer permessage-deflate")
    add(
        "--binary",
        choices=["hex", "length"],
        default="hex",
        help=f"how to show binary messages: hex (first {HEX_PREVIEW} bytes) or only the length",
    )
    add("--open-timeout", type=_seconds, default=10.0, metavar="SECONDS")
    add(
        "--max-size",
        type=int,
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest message accepted (default: 16 MiB)",
    )


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.insecure or args.ca_file):
        return None
    context = ssl.create_default_context(cafile=args.ca_file)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    try:
        connecting = connect(
            args.url,
            subprotocols=args.subprotocol,
            extra_headers=args.header,
            origin=args.origin,
            compression=None if args.no_compression else "deflate",
            open_timeout=args.open_timeout or None,
            max_size=args.max_size,
            ssl=_ssl_context(args),
        )
    except (WebSocketError, OSError, ValueError) as exc:  # bad URL or option; --ca-file
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    opening = asyncio.ensure_future(connecting.open())
    interrupts = 0

    def interrupted() -> None:
        """Ctrl-C: give up while connecting; once open, close (1000), then drop the connection."""
        nonlocal interrupts
        interrupts += 1
        if not opening.done():
            opening.cancel()
        elif not opening.cancelled() and opening.exception() is None:
            protocol = opening.result().protocol
            if interrupts == 1:
                protocol.close()
            else:
                protocol.abort(1006, "")

    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    try:
        try:
            ws = await opening
        except asyncio.CancelledError:
            if not (interrupts and opening.cancelled()):
                raise  # our own task was cancelled
            print("interrupted while connecting", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (WebSocketError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_CONNECT
        return await _session(ws, args)
    finally:
        if on_main_thread:
            loop.remove_signal_handler(signal.SIGINT)


class _Tally:
    """Lines sent and messages received, for knowing when the replies are in."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.last = asyncio.get_running_loop().time()  # a greeting counts from the start
        self.changed = asyncio.Event()

    def touch(self) -> None:
        self.last = asyncio.get_running_loop().time()
        self.changed.set()

    async def replies(self, wait: float) -> None:
        """Return once every line sent has a reply and SETTLE passed without another message,
        or once nothing came for ``wait`` seconds; a server that never stops sending gets
        ``wait`` seconds from the moment every line had its reply."""
        loop = asyncio.get_running_loop()
        answered_at: float | None = None
        while wait > 0:
            now = loop.time()
            if answered_at is None and self.received >= self.sent:
                answered_at = now
            quiet = now - self.last
            if answered_at is None:
                timeout = wait - quiet
            else:
                timeout = min(SETTLE - quiet, answered_at + wait - now)
            if timeout <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout)
            except TimeoutError:
                pass


async def _receive(ws: ClientConnection, out: Plain, tally: _Tally) -> None:
    try:
        async for message in ws:
            tally.received += 1
            tally.touch()
            out.received(message)
    except ConnectionClosed:
        pass  # reported by the caller from close_code


async def _ping(ws: ClientConnection, out: Plain, data: bytes | None) -> None:
    started = time.perf_counter()  # finer than the loop's clock, which uvloop keeps in ms
    try:
        await ws.ping(data)
    except (ConnectionClosed, ConnectionError, ValueError) as exc:
        out.note(f"ping failed: {exc}")
        return
    out.say(f"< pong ({(time.perf_counter() - started) * 1000:.2f} ms)")


async def _send(
    ws: ClientConnection,
    lines: asyncio.Queue[str | None],
    out: Plain,
    tally: _Tally,
    commands: bool,
) -> float:
    """Send what is typed or piped until the input ends or ``/close``; returns how long to
    wait for replies then (0 for a terminal, where the user saw them already)."""
    tasks = set()
    while (line := await lines.get()) is not None:
        action = parse_line(line, commands)
        if isinstance(action, Send):
            await ws.send(action.data)
            tally.sent += 1
            tally.touch()
            out.sent(line)
        elif isinstance(action, Ping):
            task = asyncio.create_task(_ping(ws, out, action.data))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif isinstance(action, Close):
            await ws.close(action.code, action.reason)
            return 0.0
        elif isinstance(action, Help):
            out.say(HELP)
        elif isinstance(action, Usage):
            out.note(action.message)
    return -1.0


async def _session(ws: ClientConnection, args: argparse.Namespace) -> int:
    interactive = not args.execute and sys.stdin.isatty() and sys.stdout.isatty()
    out: Plain = Plain(args.binary, marks=sys.stdout.isatty())
    if interactive:
        try:
            out = Prompt(args.binary, args.history_file)
        except ImportError:  # no readline (Windows): lines without editing, still marked
            pass
    try:
        details = [f"subprotocol {ws.subprotocol}"] if ws.subprotocol else []
        if ws.extensions:
            details.append(ws.extensions)
        suffix = f" ({'; '.join(details)})" if details else ""
        hint = " (/help for commands, Ctrl-D to close)" if interactive else ""
        out.note(f"connected to {ws.url}{suffix}{hint}")
        return await _converse(ws, args, out, interactive)
    finally:
        out.restore()


async def _converse(
    ws: ClientConnection, args: argparse.Namespace, out: Plain, interactive: bool
) -> int:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    if args.execute:
        for message in [*args.execute, None]:
            lines.put_nowait(message)
    else:
        out.start_reading(feeder(asyncio.get_running_loop(), lines))
    tally = _Tally()
    receiver = asyncio.create_task(_receive(ws, out, tally))
    sender = asyncio.create_task(_send(ws, lines, out, tally, interactive or args.slash))
    await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
    if sender.done() and sender.exception() is None and not ws.closed:
        if sender.result() < 0 and not interactive:  # piped input ended: wait for replies
            await asyncio.wait(
                {receiver, asyncio.ensure_future(tally.replies(args.wait))},
                return_when=asyncio.FIRST_COMPLETED,
            )
        await ws.close()
    sender.cancel()
    await receiver
    await ws.wait_closed()
    code = ws.close_code if ws.close_code is not None else 1006
    reason = f" {ws.close_reason!r}" if ws.close_reason else ""
    out.note(f"closed: {code} ({close_code_meaning(code)}){reason}")
    return EXIT_NORMAL if code in NORMAL_CLOSE_CODES else EXIT_ABNORMAL


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.url and args.connect_url:
        parser.error("give the URL once: as an argument or with -c")
    args.url = args.url or args.connect_url
    if not args.url:
        parser.error("the URL is missing: krandog-asgi connect ws://host:port/path")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(run(args))
    except KeyboardInterrupt:
        # Ctrl-C while run() does not handle it (the loop starting or ending): no traceback.
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
