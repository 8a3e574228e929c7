"""Every server option in one dataclass, plus the pieces derived from it once per process.

Each field carries its command-line flag in its metadata (``krandog_asgi.flags.option``): the
CLI builds its parser from these fields, and ``krandog_asgi.run(app, **options)`` takes the
same names. Loading the app and making the TLS context are done by ``process.loader`` and
``process.binding``; this module imports no protocol code, so every other module may import it.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from krandog_asgi.asgi_types import ASGIApp
from krandog_asgi.flags import (
    FLAG,
    Choice,
    Flag,
    KiB,
    MiB,
    auto_count,
    boolean,
    header,
    non_negative_int,
    option,
    optional_count,
    optional_seconds,
    optional_size,
    port_number,
    positive_int,
    repeated,
    seconds,
    size,
)
from krandog_asgi.http.response import check_header
from krandog_asgi.process.binding import create_ssl_context
from krandog_asgi.process.loader import InterfaceMode, load_app
from krandog_asgi.process.logs import LOG_LEVELS
from krandog_asgi.pubsub.errors import BrokerError
from krandog_asgi.pubsub.factory import check_url
from krandog_asgi.websocket.connection import DEFAULT_MAX_FRAGMENTS

__all__ = ["Config", "ConfigError"]

LifespanMode = Literal["auto", "on", "off"]

# uvicorn's implementation names are accepted so that its command lines work unchanged; every
# one of them means our own implementation.
WS_IMPLEMENTATION = Choice(
    {
        "auto": True,
        "krandog": True,
        "none": False,
        "websockets": True,
        "websockets-sansio": True,
        "wsproto": True,
    },
    shown=("auto", "krandog", "none"),
)
# uvicorn's "asgi3" is what "asgi" means here (ASGI 2 apps are not served).
INTERFACE = Choice(
    {"auto": "auto", "asgi": "asgi", "asgi3": "asgi", "krandog": "krandog"},
    shown=("auto", "asgi", "krandog"),
)


class ConfigError(ValueError):
    """An option that cannot be used (a TLS file, a header): one line for the user."""


@dataclass
class Config:
    """All server options; names match the flags (``--ws-max-size`` is ``ws_max_size``)."""

    app: ASGIApp | Callable[..., Any] | str = field(
        metadata={
            FLAG: Flag(
                "the app to serve, as module:attr (attr may be dotted)",
                positional=True,
                metavar="APP",
            )
        }
    )
    # -- binding
    host: str = option("127.0.0.1", "bind address; IPv6 allowed", group="binding")
    port: int = option(
        8000, "bind port, 0-65535; 0 picks a free one", group="binding", parse=port_number
    )
    uds: str | None = option(
        None, "bind to this UNIX domain socket instead", group="binding", metavar="PATH"
    )
    fd: int | None = option(
        None, "serve on this already-open socket fd", group="binding", parse=int, metavar="FD"
    )
    backlog: int = option(2048, "listen backlog", group="binding", parse=int)
    # -- processes
    workers: int = option(
        1,
        "worker processes sharing the socket (at least 1)",
        group="processes",
        parse=positive_int,
        env="WEB_CONCURRENCY",
    )
    timeout_worker_healthcheck: float | None = option(
        5.0,
        "with --workers: restart a worker that does not answer a ping within N seconds "
        "(its event loop is stuck, or the process is stopped); 0 or none disables",
        group="processes",
        parse=optional_seconds,
    )
    reload: bool = option(False, "restart when files change (development)", group="processes")
    reload_delay: float = option(
        0.25,
        "with --reload: restart once no file has changed for this many seconds",
        group="processes",
        parse=seconds,
    )
    reload_dirs: list[str] = repeated(
        "watch this directory, repeatable (default: the current one)",
        group="processes",
        flag="--reload-dir",
        metavar="DIR",
    )
    reload_includes: list[str] = repeated(
        "also watch files matching this pattern, repeatable (*.py always)",
        group="processes",
        flag="--reload-include",
        metavar="GLOB",
    )
    reload_excludes: list[str] = repeated(
        "ignore files matching this pattern, repeatable",
        group="processes",
        flag="--reload-exclude",
        metavar="GLOB",
    )
    # -- application
    factory: bool = option(False, "APP is a factory returning the app", group="application")
    app_dir: str = option(
        ".", "add this directory to sys.path first", group="application", metavar="DIR"
    )
    interface: InterfaceMode = option(
        "auto",
        "ASGI app or krandog handler; auto detects (uvicorn's asgi3 means asgi)",
        group="application",
        parse=INTERFACE,
        metavar=INTERFACE.metavar,
    )
    handler_threads: bool = option(
        False, "run synchronous krandog handlers in a thread pool", group="application"
    )
    lifespan: LifespanMode = option(
        "auto",
        "ASGI lifespan; 'on' fails startup if the app fails it (exit code 3)",
        group="application",
        choices=("auto", "on", "off"),
    )
    env_file: str | None = option(
        None, "load environment variables from this file", group="application", metavar="FILE"
    )
    root_path: str = option(
        "", "ASGI root_path for apps behind a path prefix", group="application", metavar="PATH"
    )
    # -- logging (log_config may also be a dictConfig dict, from Python)
    log_level: str | int | None = option(
        "info", "logging level", group="logging", choices=tuple(LOG_LEVELS)
    )
    log_config: dict[str, Any] | str | None = option(
        None, "logging config file (.ini, .json, .yaml)", group="logging", metavar="FILE"
    )
    access_log: bool = option(True, "log one line per request", group="logging", negatable=True)
    use_colors: bool | None = option(
        None,
        "colour the log level names",
        group="logging",
        negatable=True,
        shown_default="when stderr is a terminal and $NO_COLOR is unset",
    )
    # -- HTTP
    proxy_headers: bool = option(
        True,
        "trust X-Forwarded-For/-Proto from --forwarded-allow-ips",
        group="HTTP",
        negatable=True,
    )
    # None: $FORWARDED_ALLOW_IPS, else 127.0.0.1 (resolved in __post_init__, for run() too)
    forwarded_allow_ips: str | list[str] | None = option(
        None,
        "comma-separated IPs/CIDRs trusted as proxies, or '*'",
        group="HTTP",
        shown_default="$FORWARDED_ALLOW_IPS, else 127.0.0.1",
        metavar="IPS",
    )
    server_header: bool = option(True, "send 'Server: krandog-asgi'", group="HTTP", negatable=True)
    date_header: bool = option(True, "send a Date header", group="HTTP", negatable=True)
    headers: list[tuple[str, str]] = repeated(
        "extra response header, repeatable ('Server: x' replaces ours)",
        group="HTTP",
        flag="--header",
        metavar="NAME:VALUE",
        parse=header,
    )
    timeout_keep_alive: float = option(
        5.0,
        "close idle keep-alive connections after this many seconds; 0: no keep-alive",
        group="HTTP",
        parse=seconds,
    )
    timeout_request_header: float = option(
        10.0,
        "deadline for a request head, from its first byte; 0 disables it",
        group="HTTP",
        parse=seconds,
    )
    timeout_graceful_shutdown: float | None = option(
        30.0,
        "wait this long for in-flight work on shutdown; 0 or none: forever",
        group="HTTP",
        parse=optional_seconds,
    )
    limit_concurrency: int | None = option(
        None, "answer 503 beyond this many tasks", group="HTTP", parse=int
    )
    limit_max_requests: int | None = option(
        None, "exit after this many requests", group="HTTP", parse=positive_int
    )
    limit_max_requests_jitter: int = option(
        0,
        "add a random 0..N to --limit-max-requests in each worker, so that workers do not "
        "all restart at once",
        group="HTTP",
        parse=non_negative_int,
    )
    limit_request_line: int = option(
        8 * KiB, "longest request target, else 414", group="HTTP", parse=size
    )
    limit_request_headers: int = option(
        64 * KiB, "largest request head, else 431", group="HTTP", parse=size
    )
    limit_request_fields: int = option(
        100, "most request header fields, else 431", group="HTTP", parse=int
    )
    limit_request_body: int | None = option(
        100 * MiB,
        "largest request body, else 413 (before reading it when Content-Length says so); "
        "none or off: no limit",
        group="HTTP",
        parse=optional_size,
        shown_default="100MiB",
    )
    timeout_request_body: float | None = option(
        30.0,
        "deadline for a request body, from the end of its head (408, or a close once the "
        "response began), extended by --limit-request-body-rate; 0 or none: no deadline",
        group="HTTP",
        parse=optional_seconds,
    )
    limit_request_body_rate: int = option(
        1 * KiB,
        "each this many body bytes received extend --timeout-request-body by one second "
        "(a minimum rate after the deadline's grace); 0: a fixed deadline",
        group="HTTP",
        parse=size,
        metavar="BYTES_PER_S",
    )
    timeout_write_stall: float | None = option(
        30.0,
        "close an HTTP or WebSocket connection whose client takes none of our bytes for this "
        "long while our writes wait for it; 0 or none: never",
        group="HTTP",
        parse=optional_seconds,
    )
    limit_max_connections: int | None = option(
        None,
        "most open connections (HTTP and WebSocket) per process: beyond it the oldest idle "
        "keep-alive connection is closed, else the new one is; 0 or none: no limit",
        group="HTTP",
        parse=auto_count,
        shown_default="auto: 90% of the open-file limit (ulimit -n)",
    )
    limit_connections_per_ip: int | None = option(
        None,
        "most open connections from one client IP (the peer address, not X-Forwarded-For); "
        "beyond it new ones are closed; 0 or none: no limit",
        group="HTTP",
        parse=optional_count,
        shown_default="unlimited",
    )
    # -- WebSocket
    ws: bool = option(
        True,
        "'none' serves upgrade requests as plain HTTP; uvicorn's names "
        "(websockets, websockets-sansio, wsproto) mean 'krandog'",
        group="WebSocket",
        parse=WS_IMPLEMENTATION,
        metavar=WS_IMPLEMENTATION.metavar,
        shown_default="auto",
    )
    ws_max_size: int = option(
        16 * MiB,
        "largest message in bytes, else close 1009",
        group="WebSocket",
        parse=size,
    )
    ws_max_fragments: int = option(
        DEFAULT_MAX_FRAGMENTS,
        "most frames in one message, else close 1009",
        group="WebSocket",
        parse=int,
    )
    ws_max_queue: int = option(
        32,
        "messages buffered for the app before reading pauses",
        group="WebSocket",
        parse=int,
    )
    ws_ping_interval: float | None = option(
        20.0,
        "keepalive ping every N seconds; 0 or none disables",
        group="WebSocket",
        parse=optional_seconds,
    )
    ws_ping_timeout: float | None = option(
        20.0,
        "close 1011 without a pong within N seconds; 0 or none disables",
        group="WebSocket",
        parse=optional_seconds,
    )
    ws_close_timeout: float = option(
        10.0, "wait this long for the closing handshake", group="WebSocket", parse=seconds
    )
    ws_per_message_deflate: bool = option(
        True, "negotiate permessage-deflate", group="WebSocket", parse=boolean, metavar="BOOL"
    )
    ws_write_limit: int = option(
        64 * KiB,
        "send waits while more than this is buffered",
        group="WebSocket",
        parse=size,
    )
    # permessage-deflate's compression settings: from Python only.
    ws_deflate_window_bits: int = 12
    ws_deflate_mem_level: int = 5
    # -- broadcast (pub/sub between workers and machines: krandog_asgi.pubsub)
    broadcast_url: str = option(
        "memory://",
        "pub/sub backend: memory:// (one process) or redis://host:port/db, rediss:// (TLS)",
        group="broadcast",
        env="KRANDOG_BROADCAST_URL",
        metavar="URL",
    )
    broadcast_queue: int = option(
        1024,
        "messages a subscription buffers before dropping its oldest",
        group="broadcast",
        parse=positive_int,
        metavar="N",
    )
    presence_ttl: float = option(
        15.0,
        "a presence entry not refreshed for this long expires (its process died)",
        group="broadcast",
        parse=seconds,
        metavar="SECONDS",
    )
    presence_heartbeat: float = option(
        5.0,
        "refresh this process's presence entries this often (below --presence-ttl)",
        group="broadcast",
        parse=seconds,
        metavar="SECONDS",
    )
    # -- TLS
    ssl_keyfile: str | None = option(None, "private key file (PEM)", group="TLS", metavar="FILE")
    ssl_certfile: str | None = option(
        None, "certificate chain file (PEM)", group="TLS", metavar="FILE"
    )
    ssl_keyfile_password: str | None = option(
        None, "password of the key file", group="TLS", metavar="PASSWORD"
    )
    ssl_version: int = option(
        int(ssl.PROTOCOL_TLS_SERVER), "an ssl.PROTOCOL_* number", group="TLS", parse=int
    )
    ssl_cert_reqs: int = option(
        int(ssl.CERT_NONE),
        "0 none, 1 optional, 2 required client certificates",
        group="TLS",
        parse=int,
    )
    ssl_ca_certs: str | None = option(
        None, "CA certificates to verify clients against", group="TLS", metavar="FILE"
    )
    ssl_ciphers: str = option("TLSv1", "OpenSSL cipher list", group="TLS", metavar="CIPHERS")

    def __post_init__(self) -> None:
        if self.forwarded_allow_ips is None:
            self.forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        if self.interface == "asgi3":  # type: ignore[comparison-overlap]
            self.interface = "asgi"
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, not {self.port}")
        self.loaded = False
        self.loaded_app: ASGIApp | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.header_bytes: bytes = b""
        self.trust_all_proxies = False
        self.trusted_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.trusted_literals: set[str] = set()

    # -- derived once per process ----------------------------------------------------------

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_keyfile or self.ssl_certfile)

    def load(self) -> None:
        """Import the app, build TLS and header state. Called in each worker, after spawn."""
        if self.loaded:
            return
        if self.is_ssl:
            self.ssl_context = self._build_ssl_context()
        self.check_broadcast()
        self.header_bytes = self._encode_headers()
        # A --header Server (or Date) replaces ours: both are single-valued (RFC 9110 §10.2.4).
        own = {name.strip().lower() for name, _ in self.headers}
        self.server_header = self.server_header and "server" not in own
        self.date_header = self.date_header and "date" not in own
        trust = _trusted_networks(self.forwarded_allow_ips or "")
        self.trust_all_proxies, self.trusted_networks, self.trusted_literals = trust
        self.loaded_app = load_app(self)
        self.loaded = True

    def check_options(self) -> None:
        """Raise ConfigError for TLS files or headers that cannot be used; the parent of
        ``--workers`` calls it so that a bad option fails once, not in every respawned worker."""
        if self.is_ssl:
            self._build_ssl_context()
        self._encode_headers()
        self.check_broadcast()

    def check_broadcast(self) -> None:
        """A broadcast URL no backend serves, or presence timings that cannot work."""
        try:
            check_url(self.broadcast_url or "memory://")
        except BrokerError as exc:
            raise ConfigError(f"--broadcast-url: {exc}") from None
        if not 0 < self.presence_heartbeat < self.presence_ttl:
            raise ConfigError(
                f"--presence-heartbeat ({self.presence_heartbeat}s) must be above 0 and below "
                f"--presence-ttl ({self.presence_ttl}s)"
            )

    def _build_ssl_context(self) -> ssl.SSLContext:
        try:
            return create_ssl_context(self)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError(f"Could not set up TLS: {exc}") from exc

    def _encode_headers(self) -> bytes:
        encoded = []
        for name, value in self.headers:
            try:
                raw_name, raw_value = name.lower().encode("latin-1"), value.encode("latin-1")
                check_header(raw_name, raw_value)
            except (UnicodeEncodeError, ValueError) as exc:
                raise ConfigError(f"Invalid --header {name!r}: {exc}") from exc
            encoded.append(raw_name + b": " + raw_value + b"\r\n")
        return b"".join(encoded)

    def is_trusted_proxy(self, host: str | None) -> bool:
        if self.trust_all_proxies:
            return True
        if host is None:
            return False
        if host in self.trusted_literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted_networks)


def _trusted_networks(
    spec: str | Sequence[str],
) -> tuple[bool, list[ipaddress.IPv4Network | ipaddress.IPv6Network], set[str]]:
    """Split ``--forwarded-allow-ips`` into (trust all, networks, literals such as UDS paths)."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    literals: set[str] = set()
    trust_all = False
    for item in items:
        if not item:
            continue
        if item == "*":
            trust_all = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            literals.add(item)
    return trust_all, networks, literals
