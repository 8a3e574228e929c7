"""Every server option in one dataclass, plus the pieces derived from it once per process.

The CLI builds its flags from these fields; ``krandog_asgi.run(app, **options)`` takes the same
names. This module imports no protocol code, so every other module may import it.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import ipaddress
import logging
import os
import socket
import ssl
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from krandog_asgi.asgi_types import ASGIApp
from krandog_asgi.http.response import check_header
from krandog_asgi.websocket.connection import DEFAULT_MAX_FRAGMENTS

logger = logging.getLogger("krandog_asgi.error")

__all__ = ["Config", "ConfigError", "ImportFromStringError", "import_from_string"]

KiB = 1024
MiB = 1024 * 1024

LifespanMode = Literal["auto", "on", "off"]
InterfaceMode = Literal["auto", "asgi", "krandog"]


class ImportFromStringError(Exception):
    """The APP string could not be resolved to an object; the message is meant for the user."""


def import_from_string(import_str: str) -> Any:
    """Resolve ``module:attr`` (``attr`` may be dotted) to an object."""
    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise ImportFromStringError(
            f'Import string "{import_str}" must be in format "<module>:<attribute>".'
        )
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        if exc.name != module_str and not module_str.startswith(f"{exc.name}."):
            raise  # the module exists but one of its own imports failed
        raise ImportFromStringError(f'Could not import module "{module_str}".') from None
    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise ImportFromStringError(
            f'Attribute "{attrs_str}" not found in module "{module_str}".'
        ) from None
    return instance


def parse_size(value: str | int) -> int:
    """Accept ``65536``, ``64k``, ``64KiB``, ``16m``, ``16MiB``: limits read better with units."""
    if isinstance(value, int):
        return value
    text = value.strip().lower().removesuffix("ib").removesuffix("b")
    factor = 1
    if text and text[-1] in "km":
        factor = KiB if text[-1] == "k" else MiB
        text = text[:-1]
    number = int(text)
    if number < 0:
        raise ValueError("size must not be negative")
    return number * factor


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


@dataclass
class Config:
    """All server options; names match the flags (``--ws-max-size`` is ``ws_max_size``)."""

    app: ASGIApp | Callable[..., Any] | str
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    backlog: int = 2048
    workers: int = 1
    reload: bool = False
    reload_dirs: list[str] = field(default_factory=list)
    reload_includes: list[str] = field(default_factory=list)
    reload_excludes: list[str] = field(default_factory=list)
    factory: bool = False
    app_dir: str = "."
    interface: InterfaceMode = "auto"
    lifespan: LifespanMode = "auto"
    env_file: str | None = None
    log_level: str | int | None = "info"
    log_config: dict[str, Any] | str | None = None
    access_log: bool = True
    use_colors: bool | None = None
    root_path: str = ""
    proxy_headers: bool = True
    forwarded_allow_ips: str | list[str] | None = None
    server_header: bool = True
    date_header: bool = True
    headers: list[tuple[str, str]] = field(default_factory=list)
    # HTTP limits and timers
    timeout_keep_alive: float = 5.0
    timeout_request_header: float = 10.0
    timeout_graceful_shutdown: float | None = 30.0
    limit_concurrency: int | None = None
    limit_max_requests: int | None = None
    limit_request_line: int = 8 * KiB
    limit_request_headers: int = 64 * KiB
    limit_request_fields: int = 100
    limit_request_body: int | None = None
    # WebSocket
    ws: bool = True
    ws_max_size: int = 16 * MiB
    ws_max_fragments: int = DEFAULT_MAX_FRAGMENTS
    ws_max_queue: int = 32
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_close_timeout: float = 10.0
    ws_per_message_deflate: bool = True
    ws_deflate_window_bits: int = 12
    ws_deflate_mem_level: int = 5
    ws_write_limit: int = 64 * KiB
    # TLS
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_version: int = int(ssl.PROTOCOL_TLS_SERVER)
    ssl_cert_reqs: int = int(ssl.CERT_NONE)
    ssl_ca_certs: str | None = None
    ssl_ciphers: str = "TLSv1"
    # krandog handlers: run sync handlers in a thread pool instead of on the event loop
    handler_threads: bool = False

    def __post_init__(self) -> None:
        if self.forwarded_allow_ips is None:
            self.forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        if self.reload and self.workers > 1:
            logging.getLogger("krandog_asgi.error").warning(
                '"workers" is ignored when "reload" is enabled.'
            )
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

    @property
    def should_reload(self) -> bool:
        return isinstance(self.app, str) and self.reload

    def load(self) -> None:
        """Import the app, build TLS and header state. Called in each worker, after fork/spawn."""
        if self.loaded:
            return
        if self.is_ssl:
            self.ssl_context = self._build_ssl_context()
        self.header_bytes = self._encode_headers()
        # A --header Server (or Date) replaces ours: both are single-valued (RFC 9110 §10.2.4).
        own = {name.strip().lower() for name, _ in self.headers}
        self.server_header = self.server_header and "server" not in own
        self.date_header = self.date_header and "date" not in own
        trust = _trusted_networks(self.forwarded_allow_ips or "")
        self.trust_all_proxies, self.trusted_networks, self.trusted_literals = trust
        self.loaded_app = self.resolve_app()
        self.loaded = True

    def check_options(self) -> None:
        """Raise ConfigError for TLS files or headers that cannot be used; the parent of
        ``--workers`` calls it so that a bad option fails once, not in every respawned worker."""
        if self.is_ssl:
            self._build_ssl_context()
        self._encode_headers()

    def _build_ssl_context(self) -> ssl.SSLContext:
        try:
            return create_ssl_context(self)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            files = ", ".join(
                f"{flag} {path}"
                for flag, path in (
                    ("--ssl-certfile", self.ssl_certfile),
                    ("--ssl-keyfile", self.ssl_keyfile),
                    ("--ssl-ca-certs", self.ssl_ca_certs),
                )
                if path
            )
            raise ConfigError(f"Could not set up TLS ({files}): {exc}") from exc

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

    def resolve_app(self) -> ASGIApp:
        """Turn ``self.app`` into an ASGI 3 callable: import, call a factory, wrap a handler."""
        app: Any = self.app
        if isinstance(app, str):
            if self.app_dir and self.app_dir not in sys.path:
                sys.path.insert(0, self.app_dir)
            app = import_from_string(app)
        if self.factory:
            if not callable(app):
                raise ImportFromStringError("--factory was given but the app is not callable.")
            app = app()
        elif self.interface == "auto" and looks_like_factory(app):
            logger.warning(
                "ASGI app factory detected (a function without arguments). Using it, but "
                "please consider setting the --factory flag explicitly."
            )
            app = app()
        if not callable(app):
            raise ImportFromStringError(f"The app {app!r} is not callable.")
        interface = self.interface
        if interface == "auto":
            interface = "krandog" if looks_like_krandog_handler(app) else "asgi"
        if interface == "krandog":
            from krandog_asgi.compat import is_krandog_app, krandog_app

            if not is_krandog_app(app):
                app = krandog_app(app, threads=self.handler_threads)
        result: ASGIApp = app
        return result

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

    def bind_socket(self) -> socket.socket:
        """Create the listening socket in the parent so that every worker shares it."""
        if self.uds:
            path = self.uds
            try:
                mode = os.stat(path).st_mode
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISSOCK(mode):
                    # Only a stale socket is replaced, never a file that happens to be there.
                    raise OSError(errno.EADDRINUSE, f"{path} exists and is not a socket")
                os.unlink(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"Cannot bind to {path}: {exc.strerror}") from exc
            os.chmod(path, 0o666)
            info = os.stat(path)
            _BOUND_UNIX_SOCKETS[path] = (info.st_dev, info.st_ino)
        elif self.fd is not None:
            sock = socket.socket(fileno=self.fd)
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((self.host, self.port))
        if self.fd is None:
            sock.listen(self.backlog)
        sock.set_inheritable(True)
        return sock


class ConfigError(ValueError):
    """An option that cannot be used (a TLS file, a header): one line for the user."""


# Socket files this process bound: (device, inode), so that at exit we remove ours and never
# the socket of a newer server that has since been started on the same path.
_BOUND_UNIX_SOCKETS: dict[str, tuple[int, int]] = {}


def remove_unix_socket(path: str) -> None:
    """Remove the socket file we bound, at shutdown, if it is still ours."""
    ours = _BOUND_UNIX_SOCKETS.pop(path, None)
    try:
        info = os.stat(path)
        if ours == (info.st_dev, info.st_ino):
            os.unlink(path)
    except OSError:
        pass


def looks_like_krandog_handler(app: Any) -> bool:
    """A krandog handler takes one positional argument; an ASGI 3 app takes three."""
    from krandog_asgi.compat import is_krandog_app

    if is_krandog_app(app):
        return False
    target = app
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        if inspect.isclass(app) or not callable(app):
            return False
        target = app.__call__
    return _required_positional(target) == 1


def looks_like_factory(app: Any) -> bool:
    """A plain function that takes no argument cannot be an ASGI app or a handler: it is an app
    factory given without ``--factory`` (uvicorn calls it too, with a warning)."""
    if not inspect.isfunction(app) or inspect.iscoroutinefunction(app):
        return False
    try:
        return not inspect.signature(app).parameters
    except (TypeError, ValueError):
        return False


def _required_positional(target: Any) -> int | None:
    """How many positional arguments ``target`` requires; None when it takes ``*args`` or its
    signature cannot be read."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    return sum(
        1
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def create_ssl_context(config: Config) -> ssl.SSLContext:
    ctx = ssl.SSLContext(config.ssl_version)
    password = config.ssl_keyfile_password

    def get_password() -> str:
        return password or ""

    if config.ssl_certfile is None:
        raise ValueError("--ssl-keyfile needs --ssl-certfile")
    ctx.load_cert_chain(
        config.ssl_certfile, config.ssl_keyfile, get_password if password is not None else None
    )
    ctx.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
    if config.ssl_ca_certs:
        ctx.load_verify_locations(config.ssl_ca_certs)
    if config.ssl_ciphers:
        ctx.set_ciphers(config.ssl_ciphers)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
