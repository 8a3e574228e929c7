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

__all__ = [
    "BindError",
    "ListenOptions",
    "TLSOptions",
    "bind_error",
    "bind_socket",
    "create_ssl_context",
    "remove_unix_socket",
    "running_on",
]


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
        sock = _adopt_fd(options)
    else:
        family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((options.host, options.port))
        except OSError as exc:
            sock.close()
            raise bind_error(exc, options) from exc
    if options.fd is None:
        try:
            sock.listen(options.backlog)
        except OSError as exc:
            sock.close()
            raise bind_error(exc, options) from exc
    sock.set_inheritable(True)
    return sock


def _adopt_fd(options: ListenOptions) -> socket.socket:
    """The socket behind ``--fd``, refused unless it is a stream socket that listens or can.

    A wrong number can name any descriptor of this process (a log file, the event loop's own
    wakeup socket); serving on it and closing it at exit would break what owns it, so a refused
    descriptor is let go (``detach``), never closed."""
    assert options.fd is not None
    try:
        sock = socket.socket(fileno=options.fd)
    except OSError as exc:
        raise bind_error(exc, options) from exc
    try:
        if sock.type != socket.SOCK_STREAM:
            raise _refused(errno.EPROTOTYPE, "not a stream socket", options)
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            # Bound but not yet listening (as some supervisors pass it): listen() succeeds,
            # while a connected socket refuses with EINVAL.
            sock.listen(options.backlog)
    except OSError as exc:
        sock.detach()
        if isinstance(exc, BindError):
            raise
        if exc.errno == errno.EINVAL:
            raise _refused(errno.EINVAL, "not a listening socket", options) from exc
        raise bind_error(exc, options) from exc
    return sock


def _refused(code: int, reason: str, options: ListenOptions) -> BindError:
    return BindError(code, f"Cannot bind to --fd {options.fd}: {reason}")


class BindError(OSError):
    """A socket that could not be bound or used; ``str()`` is the line for the user (without
    OSError's ``[Errno N]`` prefix), ``errno`` stays for code that checks it."""

    def __str__(self) -> str:
        return str(self.strerror)


def bind_error(exc: OSError, options: ListenOptions) -> OSError:
    """``exc`` as one line that names the address: the kernel's message alone ("Address
    already in use") does not say which one, and a resolver error does not name the host."""
    if options.uds:
        where = f"unix socket {options.uds}"
    elif options.fd is not None:
        where = f"--fd {options.fd}"
    else:
        host = options.host
        where = f"[{host}]:{options.port}" if ":" in host else f"{host}:{options.port}"
    if isinstance(exc, socket.gaierror):
        return BindError(exc.errno, f"Cannot bind to {where}: unknown host {options.host!r}")
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return BindError(exc.errno, f"Cannot bind to {where}: {reason}")


def running_on(sock: socket.socket, scheme: str) -> str:
    """The "running on" line for a listening socket: tests and scripts read the port of
    ``--port 0`` from it, so every mode prints it once, in this form."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"krandog-asgi running on unix socket {name} (Press CTRL+C to quit)"
    host, port = name[0], name[1]
    shown = f"[{host}]" if ":" in host else host
    return f"krandog-asgi running on {scheme}://{shown}:{port} (Press CTRL+C to quit)"


def _bind_unix(path: str) -> socket.socket:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            # Only a stale socket is replaced, never a file that happens to be there.
            raise BindError(
                errno.EADDRINUSE, f"Cannot bind to {path}: it exists and is not a socket"
            )
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, f"Cannot bind to {path}: {exc.strerror}") from exc
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
    """The server's TLS context (ALPN offers HTTP/1.1 only). Raises ``ValueError`` saying which
    file is at fault: the certificate and the key are checked one after the other, since
    OpenSSL's error for a bad pair ("PEM lib") does not say which of the two it was."""
    certfile, keyfile = options.ssl_certfile, options.ssl_keyfile
    if certfile is None:
        raise ValueError("--ssl-keyfile needs --ssl-certfile")
    _check_readable("--ssl-certfile", certfile)
    if keyfile is not None:
        _check_readable("--ssl-keyfile", keyfile)
    _check_certificate(certfile)
    ctx = ssl.SSLContext(options.ssl_version)
    password = options.ssl_keyfile_password
    try:
        ctx.load_cert_chain(certfile, keyfile, (lambda: password) if password is not None else None)
    except ssl.SSLError as exc:
        raise ValueError(_key_problem(exc, certfile, keyfile, password is not None)) from exc
    ctx.verify_mode = ssl.VerifyMode(options.ssl_cert_reqs)
    if options.ssl_ca_certs:
        _check_readable("--ssl-ca-certs", options.ssl_ca_certs)
        try:
            ctx.load_verify_locations(options.ssl_ca_certs)
        except ssl.SSLError as exc:
            raise ValueError(
                f"--ssl-ca-certs {options.ssl_ca_certs} holds no usable CA certificate "
                f"({exc.reason or exc})"
            ) from exc
    if options.ssl_ciphers:
        try:
            ctx.set_ciphers(options.ssl_ciphers)
        except ssl.SSLError as exc:
            raise ValueError(f"--ssl-ciphers {options.ssl_ciphers!r} selects no cipher") from exc
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _check_readable(flag: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {flag} {path}: {exc.strerror}") from exc


def _check_certificate(certfile: str) -> None:
    """Parse the certificates alone (into a throwaway context's trust store)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(certfile)
    except ssl.SSLError as exc:
        raise ValueError(
            f"the certificate is bad: --ssl-certfile {certfile} holds no valid PEM certificate "
            f"({exc.reason or exc})"
        ) from exc


def _key_problem(exc: ssl.SSLError, certfile: str, keyfile: str | None, has_password: bool) -> str:
    """The certificate parsed, so the key (or the pair) is what failed."""
    where = (
        f"--ssl-keyfile {keyfile}" if keyfile else f"--ssl-certfile {certfile} (no --ssl-keyfile)"
    )
    reason = str(exc.reason or "")
    if reason == "KEY_VALUES_MISMATCH":
        return f"the key does not match the certificate: {where}"
    if "DECRYPT" in reason or (has_password and _is_encrypted(keyfile or certfile)):
        return f"the key is bad: {where} cannot be decrypted (wrong --ssl-keyfile-password?)"
    return f"the key is bad: {where} holds no valid PEM private key ({reason or exc})"


def _is_encrypted(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return b"ENCRYPTED" in fh.read(1 << 16)
    except OSError:
        return False
