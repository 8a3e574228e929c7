"""``krandog-asgi APP [options]`` and ``krandog-asgi connect URL``: flags map 1:1 onto ``Config``.

Flag names follow uvicorn's wherever the meaning is the same, so switching servers needs no
relearning.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from krandog_asgi.config import Config, parse_size

__all__ = ["build_parser", "main"]


def _optional_seconds(value: str) -> float | None:
    """``0``, ``none``, ``off`` or an empty value disable a timer."""
    if value.strip().lower() in ("", "0", "none", "off", "false"):
        return None
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return seconds


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return seconds


def _size(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _optional_size(value: str) -> int | None:
    if value.strip().lower() in ("", "none", "off"):
        return None
    return _size(value)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _env_int(name: str, default: int) -> int:
    """A default taken from the environment, as uvicorn and gunicorn read ``WEB_CONCURRENCY``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"error: ${name} must be an integer, not {raw!r}") from None
    if value < 1:
        raise SystemExit(f"error: ${name} must be at least 1, not {value}")
    return value


def _header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), val.strip()


def build_parser() -> argparse.ArgumentParser:
    d = Config(app="")
    p = argparse.ArgumentParser(
        prog="krandog-asgi",
        description="Serve an ASGI 3 app or a krandog-style handler (APP is module:attr). "
        "'krandog-asgi connect URL' opens an interactive WebSocket client.",
    )
    add = p.add_argument
    add("app", metavar="APP", help="the app to serve, as module:attr (attr may be dotted)")
    add("--version", action="version", version=f"krandog-asgi {_version()}")

    g = p.add_argument_group("binding")
    g.add_argument(
        "--host", default=d.host, help="bind address; IPv6 allowed (default: %(default)s)"
    )
    g.add_argument("--port", type=int, default=d.port, help="bind port (default: %(default)s)")
    g.add_argument("--uds", default=None, help="bind to this UNIX domain socket instead")
    g.add_argument("--fd", type=int, default=None, help="serve on this already-open socket fd")
    g.add_argument(
        "--backlog", type=int, default=d.backlog, help="listen backlog (default: %(default)s)"
    )

    g = p.add_argument_group("processes")
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the socket (default: $WEB_CONCURRENCY, else 1)",
    )
    g.add_argument("--reload", action="store_true", help="restart when files change (development)")
    g.add_argument("--reload-dir", dest="reload_dirs", action="append", default=[], metavar="DIR")
    g.add_argument(
        "--reload-include", dest="reload_includes", action="append", default=[], metavar="GLOB"
    )
    g.add_argument(
        "--reload-exclude", dest="reload_excludes", action="append", default=[], metavar="GLOB"
    )

    g = p.add_argument_group("application")
    g.add_argument("--factory", action="store_true", help="APP is a factory returning the app")
    g.add_argument("--app-dir", default=d.app_dir, help="add this directory to sys.path first")
    g.add_argument(
        "--interface",
        choices=["auto", "asgi", "krandog"],
        default=d.interface,
        help="ASGI app or krandog handler; auto detects (default: %(default)s)",
    )
    g.add_argument(
        "--handler-threads",
        action="store_true",
        help="run synchronous krandog handlers in a thread pool",
    )
    g.add_argument("--lifespan", choices=["auto", "on", "off"], default=d.lifespan)
    g.add_argument("--env-file", default=None, help="load environment variables from this file")
    g.add_argument(
        "--root-path", default=d.root_path, help="ASGI root_path for apps behind a path prefix"
    )

    g = p.add_argument_group("logging")
    g.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
    )
    g.add_argument("--log-config", default=None, help="logging config file (.ini, .json, .yaml)")
    g.add_argument("--access-log", dest="access_log", action="store_true", default=True)
    g.add_argument("--no-access-log", dest="access_log", action="store_false")
    g.add_argument("--use-colors", dest="use_colors", action="store_true", default=None)
    g.add_argument("--no-use-colors", dest="use_colors", action="store_false")

    g = p.add_argument_group("HTTP")
    g.add_argument(
        "--proxy-headers",
        dest="proxy_headers",
        action="store_true",
        default=True,
        help="trust X-Forwarded-For/-Proto from --forwarded-allow-ips (default: on)",
    )
    g.add_argument("--no-proxy-headers", dest="proxy_headers", action="store_false")
    g.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="comma-separated IPs/CIDRs trusted as proxies, or '*' "
        "(default: $FORWARDED_ALLOW_IPS or 127.0.0.1)",
    )
    g.add_argument("--server-header", dest="server_header", action="store_true", default=True)
    g.add_argument("--no-server-header", dest="server_header", action="store_false")
    g.add_argument("--date-header", dest="date_header", action="store_true", default=True)
    g.add_argument("--no-date-header", dest="date_header", action="store_false")
    g.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        help="extra response header, repeatable",
    )
    g.add_argument(
        "--timeout-keep-alive",
        type=_seconds,
        default=d.timeout_keep_alive,
        help="close idle keep-alive connections after this many seconds (default: %(default)s)",
    )
    g.add_argument(
        "--timeout-request-header",
        type=_seconds,
        default=d.timeout_request_header,
        help="deadline for a request head, from its first byte (default: %(default)s)",
    )
    g.add_argument(
        "--timeout-graceful-shutdown",
        type=_optional_seconds,
        default=d.timeout_graceful_shutdown,
        help="wait this long for in-flight work on shutdown (default: %(default)s)",
    )
    g.add_argument(
        "--limit-concurrency", type=int, default=None, help="answer 503 beyond this many tasks"
    )
    g.add_argument(
        "--limit-max-requests", type=int, default=None, help="exit after this many requests"
    )
    g.add_argument(
        "--limit-request-line",
        type=_size,
        default=d.limit_request_line,
        help="longest request target, else 414 (default: %(default)s)",
    )
    g.add_argument(
        "--limit-request-headers",
        type=_size,
        default=d.limit_request_headers,
        help="largest request head, else 431 (default: %(default)s)",
    )
    g.add_argument(
        "--limit-request-fields",
        type=int,
        default=d.limit_request_fields,
        help="most request header fields, else 431 (default: %(default)s)",
    )
    g.add_argument(
        "--limit-request-body",
        type=_optional_size,
        default=None,
        help="largest request body, else 413 (default: unlimited)",
    )
    g.add_argument("--loop", choices=["auto", "uvloop"], default="auto", help=argparse.SUPPRESS)
    g.add_argument("--http", choices=["auto", "httptools"], default="auto", help=argparse.SUPPRESS)

    g = p.add_argument_group("WebSocket")
    g.add_argument(
        "--ws",
        # uvicorn's implementation names are accepted so its command lines work unchanged;
        # every one of them means our own implementation.
        choices=["auto", "krandog", "none", "websockets", "websockets-sansio", "wsproto"],
        default="auto",
        metavar="{auto,krandog,none}",
        help="'none' serves upgrade requests as plain HTTP; uvicorn's names "
        "(websockets, websockets-sansio, wsproto) mean 'krandog'",
    )
    g.add_argument(
        "--ws-max-size",
        type=_size,
        default=d.ws_max_size,
        help="largest message in bytes, else close 1009 (default: %(default)s)",
    )
    g.add_argument(
        "--ws-max-fragments",
        type=int,
        default=d.ws_max_fragments,
        help="most frames in one message, else close 1009 (default: %(default)s)",
    )
    g.add_argument(
        "--ws-max-queue",
        type=int,
        default=d.ws_max_queue,
        help="messages buffered for the app before reading pauses (default: %(default)s)",
    )
    g.add_argument(
        "--ws-ping-interval",
        type=_optional_seconds,
        default=d.ws_ping_interval,
        help="keepalive ping every N seconds; 0 disables (default: %(default)s)",
    )
    g.add_argument(
        "--ws-ping-timeout",
        type=_optional_seconds,
        default=d.ws_ping_timeout,
        help="close 1011 without a pong within N seconds; 0 disables (default: %(default)s)",
    )
    g.add_argument(
        "--ws-close-timeout",
        type=_seconds,
        default=d.ws_close_timeout,
        help="wait this long for the closing handshake (default: %(default)s)",
    )
    g.add_argument(
        "--ws-per-message-deflate",
        type=_bool,
        default=d.ws_per_message_deflate,
        metavar="BOOL",
        help="negotiate permessage-deflate (default: true)",
    )
    g.add_argument(
        "--ws-write-limit",
        type=_size,
        default=d.ws_write_limit,
        help="send waits while more than this is buffered (default: %(default)s)",
    )

    g = p.add_argument_group("TLS")
    g.add_argument("--ssl-keyfile", default=None)
    g.add_argument("--ssl-certfile", default=None)
    g.add_argument("--ssl-keyfile-password", default=None)
    g.add_argument("--ssl-version", type=int, default=d.ssl_version)
    g.add_argument(
        "--ssl-cert-reqs",
        type=int,
        default=d.ssl_cert_reqs,
        help="0 none, 1 optional, 2 required client certificates",
    )
    g.add_argument("--ssl-ca-certs", default=None)
    g.add_argument("--ssl-ciphers", default=d.ssl_ciphers)
    return p


def _version() -> str:
    from krandog_asgi import __version__

    return __version__


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Parsed flags as ``Config`` keyword arguments (the compatibility-only flags dropped)."""
    options: dict[str, Any] = vars(args).copy()
    if options["workers"] is None:  # only now: a bad $WEB_CONCURRENCY must not break --help
        options["workers"] = _env_int("WEB_CONCURRENCY", Config.workers)
    options["ws"] = options["ws"] != "none"
    options.pop("loop", None)
    options.pop("http", None)
    return options


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "connect":
        from krandog_asgi.wsclient.cli import main as connect_main

        sys.exit(connect_main(args_list[1:]))
    args = build_parser().parse_args(args_list)
    if args.env_file:
        # Defaults read from the environment ($WEB_CONCURRENCY) may come from the env file.
        from krandog_asgi.process.envfile import apply_env_file

        if not apply_env_file(args.env_file):
            sys.exit(1)
        args = build_parser().parse_args(args_list)
    if ":" not in args.app:
        print(f'Error: APP must be "<module>:<attribute>", got "{args.app}".', file=sys.stderr)
        sys.exit(1)
    from krandog_asgi.server import run

    options = options_from_args(args)
    sys.exit(run(options.pop("app"), **options))
