"""``krandog-asgi connect URL``: a wscat-like client for trying a WebSocket server by hand.

Each line read from stdin is sent as a text message; each message received is printed on
stdout (text as is, binary as hex or as its length). Status lines go to stderr, so stdout holds
only what the server sent. The exit status tells how the connection ended.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
import threading
from collections.abc import Sequence

from krandog_asgi.wsclient.connection import ClientConnection, connect
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
HEX_PREVIEW = 64  # bytes of a binary message shown in hex


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
    p = argparse.ArgumentParser(
        prog="krandog-asgi connect",
        description="Open a WebSocket connection: send each line of stdin as a text message, "
        "print each message received. Ctrl-D (end of input) or Ctrl-C closes with 1000.",
        epilog="exit status: 0 closed normally (1000, 1001, no status), 1 closed with another "
        "code or connection lost, 2 usage error, 3 could not connect, 130 interrupted (Ctrl-C) "
        "while connecting",
    )
    add = p.add_argument
    add("url", help="ws:// or wss:// URL (IPv6 literals in brackets: ws://[::1]:8000/)")
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
    add(
        "-w",
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="after stdin ends, keep printing messages this long before closing",
    )
    add("--open-timeout", type=_seconds, default=10.0, metavar="SECONDS")
    add(
        "--max-size",
        type=int,
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest message accepted (default: 16 MiB)",
    )
    return p


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.insecure or args.ca_file):
        return None
    context = ssl.create_default_context(cafile=args.ca_file)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _show(message: str | bytes, binary: str) -> str:
    if isinstance(message, str):
        return message
    if binary == "length" or len(message) > HEX_PREVIEW:
        preview = "" if binary == "length" else f": {message[:HEX_PREVIEW].hex()}..."
        return f"<binary, {len(message)} bytes{preview}>"
    return f"<binary, {len(message)} bytes: {message.hex()}>"


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Blocking reads in a daemon thread: works for ttys, pipes and files alike, and never
    keeps the process alive."""
    try:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)
    except RuntimeError:
        pass  # the loop is closed: we are exiting


async def _send_lines(ws: ClientConnection, lines: asyncio.Queue[str | None], wait: float) -> None:
    while (line := await lines.get()) is not None:
        await ws.send(line)
    if wait:
        await asyncio.sleep(wait)


async def _print_messages(ws: ClientConnection, binary: str) -> None:
    try:
        async for message in ws:
            print(_show(message, binary), flush=True)
    except ConnectionClosed:
        pass  # reported by the caller from close_code


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


async def _session(ws: ClientConnection, args: argparse.Namespace) -> int:
    details = [f"subprotocol {ws.subprotocol}"] if ws.subprotocol else []
    if ws.extensions:
        details.append(ws.extensions)
    suffix = f" ({'; '.join(details)})" if details else ""
    print(f"connected to {ws.url}{suffix}", file=sys.stderr, flush=True)

    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
    receiver = asyncio.create_task(_print_messages(ws, args.binary))
    sender = asyncio.create_task(_send_lines(ws, lines, args.wait))
    await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
    if sender.done() and sender.exception() is None:
        await ws.close()
    sender.cancel()
    await receiver
    await ws.wait_closed()
    code = ws.close_code if ws.close_code is not None else 1006
    reason = f" {ws.close_reason!r}" if ws.close_reason else ""
    print(f"closed: {code} ({close_code_meaning(code)}){reason}", file=sys.stderr, flush=True)
    return EXIT_NORMAL if code in NORMAL_CLOSE_CODES else EXIT_ABNORMAL


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
