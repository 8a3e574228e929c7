"""The listening socket and the TLS context.

The parent of ``--workers``/``--reload`` binds once and hands the socket to every child, so a
restarted worker never misses the port. A ``--uds`` socket file is removed at exit only if it
is still the one this process bound.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import stat
from typing import Protocol

__all__ = ["ListenOptions", "TLSOptions", "bind_socket", "create_ssl_context", "remove_unix_socket"]


class ListenOptions(Protocol):
    """Where to listen, as ``Config`` says (a Protocol: ``config`` imports this module)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def uds(self) -> str | None: ...
    @property
    def fd(self) -> int | None: ...
    @property
    def backlog(self) -> int: ...


class TLSOptions(Protocol):
    @property
    def ssl_keyfile(self) -> str | None: ...
    @property
    def ssl_certfile(self) -> str | None: ...
    @property
    def ssl_keyfile_password(self) -> str | None: ...
    @property
    def ssl_version(self) -> int: ...
    @property
    def ssl_cert_reqs(self) -> int: ...
    @property
    def ssl_ca_certs(self) -> str | None: ...
    @property
    def ssl_ciphers(self) -> str: ...


# Socket files this process bound: (device, inode), so that at exit we remove ours and never
# the socket of a newer server that has since been started on the same path.
_BOUND_UNIX_SOCKETS: dict[str, tuple[int, int]] = {}


def bind_socket(options: ListenOptions) -> socket.socket:
    """The listening socket for ``--uds``, ``--fd`` or ``--host``/``--port``, inheritable so
    that spawned workers can accept from it."""
    if options.uds:
        sock = _bind_unix(options.uds)
    elif options.fd is not None:
        sock = socket.socket(fileno=options.fd)
    else:
        family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((options.host, options.port))
    if options.fd is None:
        sock.listen(options.backlog)
    sock.set_inheritable(True)
    return sock


def _bind_unix(path: str) -> socket.socket:
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
    return sock


def remove_unix_socket(path: str) -> None:
    """Remove the socket file we bound, at shutdown, if it is still ours."""
    ours = _BOUND_UNIX_SOCKETS.pop(path, None)
    try:
        info = os.stat(path)
        if ours == (info.st_dev, info.st_ino):
            os.unlink(path)
    except OSError:
        pass


def create_ssl_context(options: TLSOptions) -> ssl.SSLContext:
    """The server's TLS context (ALPN offers HTTP/1.1 only). Raises ``OSError`` (``SSLError``)
    or ``ValueError`` for files that cannot be used."""
    ctx = ssl.SSLContext(options.ssl_version)
    password = options.ssl_keyfile_password

    def get_password() -> str:
        return password or ""

    if options.ssl_certfile is None:
        raise ValueError("--ssl-keyfile needs --ssl-certfile")
    ctx.load_cert_chain(
        options.ssl_certfile, options.ssl_keyfile, get_password if password is not None else None
    )
    ctx.verify_mode = ssl.VerifyMode(options.ssl_cert_reqs)
    if options.ssl_ca_certs:
        ctx.load_verify_locations(options.ssl_ca_certs)
    if options.ssl_ciphers:
        ctx.set_ciphers(options.ssl_ciphers)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
