"""``process.binding`` in memory: the listening socket for each way of binding, the ``--uds``
file kept safe, and the TLS context (real processes: ``test_cli_process.py``)."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import stat
from pathlib import Path

import pytest

from krandog_asgi.config import Config, ConfigError
from krandog_asgi.process.binding import (
    bind_error,
    bind_socket,
    create_ssl_context,
    remove_unix_socket,
)
from tests.support.certs import Certificates, make_certificates


def accepts(sock: socket.socket) -> bool:
    """Whether a client can connect to the listening ``sock`` and be accepted."""
    family = sock.family
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(sock.getsockname())
        sock.settimeout(5)
        conn, _ = sock.accept()
        conn.close()
    return True


# -- TCP and inherited sockets ---------------------------------------------------------------


def test_tcp_socket_listens_and_is_inheritable() -> None:
    with bind_socket(Config(app="m:app", port=0, backlog=7)) as sock:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "127.0.0.1"
        assert sock.get_inheritable()  # spawned workers accept from it
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert accepts(sock)


def test_ipv6_host_is_v6_only() -> None:
    try:
        sock = bind_socket(Config(app="m:app", host="::1", port=0))
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        assert accepts(sock)


def test_fd_wraps_the_inherited_listening_socket() -> None:
    with socket.create_server(("127.0.0.1", 0)) as original:
        fd = os.dup(original.fileno())
        with bind_socket(Config(app="m:app", fd=fd)) as sock:
            assert sock.fileno() == fd
            assert sock.getsockname() == original.getsockname()
            assert accepts(sock)


# -- UNIX domain sockets ---------------------------------------------------------------------


def test_uds_socket_is_world_writable_and_removed_when_ours(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with bind_socket(Config(app="m:app", uds=path)) as sock:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        assert accepts(sock)
    remove_unix_socket(path)
    assert not os.path.exists(path)


def test_uds_replaces_a_stale_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash
    with bind_socket(Config(app="m:app", uds=path)) as sock:
        assert accepts(sock)
    remove_unix_socket(path)


def test_uds_never_replaces_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(OSError, match="exists and is not a socket"):
        bind_socket(Config(app="m:app", uds=str(path)))
    assert path.read_text() == "keep me"


def test_uds_in_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "x.sock")
    with pytest.raises(OSError, match=rf"^Cannot bind to {path}: No such file") as info:
        bind_socket(Config(app="m:app", uds=path))
    assert info.value.errno == errno.ENOENT


def test_address_in_use_names_the_address_and_keeps_the_errno() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"^Cannot bind to 127\.0\.0\.1:{port}: ") as info:
            bind_socket(Config(app="m:app", port=port))
    assert info.value.errno == errno.EADDRINUSE


def test_permission_denied_names_the_address() -> None:
    """Ports below 1024 as a normal user (the tests may run as root, where binding works)."""
    error = bind_error(PermissionError(errno.EACCES, "denied"), Config(app="m:app", port=80))
    assert str(error) == "Cannot bind to 127.0.0.1:80: Permission denied"
    assert error.errno == errno.EACCES
    v6 = bind_error(OSError(errno.EADDRNOTAVAIL, "x"), Config(app="m:app", host="::2", port=1))
    assert str(v6) == "Cannot bind to [::2]:1: Cannot assign requested address"


def test_unknown_host_names_the_host() -> None:
    with pytest.raises(OSError, match=r"^Cannot bind to nosuchhost\.invalid:80: unknown host"):
        bind_socket(Config(app="m:app", host="nosuchhost.invalid", port=80))


def test_bad_fd_names_the_fd() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)  # a descriptor number that is certainly not open
    with pytest.raises(OSError, match=rf"^Cannot bind to --fd {fd}: Bad file descriptor"):
        bind_socket(Config(app="m:app", fd=fd))


def test_exit_leaves_a_newer_servers_socket_alone(tmp_path: Path) -> None:
    """A second server on the same path (a rolling restart) replaced our socket file: the
    first one's exit must not remove it."""
    path = str(tmp_path / "shared.sock")
    first = bind_socket(Config(app="m:app", uds=path))
    os.unlink(path)
    newer = socket.socket(socket.AF_UNIX)
    newer.bind(path)
    try:
        remove_unix_socket(path)
        assert os.path.exists(path)
    finally:
        first.close()
        newer.close()
        os.unlink(path)


def test_removing_a_socket_we_never_bound_does_nothing(tmp_path: Path) -> None:
    path = tmp_path / "someone-elses.sock"
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(path))
    try:
        remove_unix_socket(str(path))
        assert path.exists()
        remove_unix_socket(str(tmp_path / "never-existed.sock"))
    finally:
        other.close()


# -- TLS -------------------------------------------------------------------------------------


def test_tls_context_from_the_files(certs: Certificates) -> None:
    config = Config(
        app="m:app",
        ssl_certfile=str(certs.certfile),
        ssl_keyfile=str(certs.keyfile),
        ssl_ca_certs=str(certs.cafile),
        ssl_cert_reqs=int(ssl.CERT_REQUIRED),
    )
    ctx = create_ssl_context(config)
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.get_ca_certs()  # --ssl-ca-certs loaded
    assert ctx.protocol is ssl.PROTOCOL_TLS_SERVER


def test_tls_keyfile_without_certfile_is_refused(certs: Certificates) -> None:
    with pytest.raises(ValueError, match="--ssl-keyfile needs --ssl-certfile"):
        create_ssl_context(Config(app="m:app", ssl_keyfile=str(certs.keyfile)))


def test_tls_error_names_the_file_not_the_app(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing-cert.pem")
    config = Config(app="m:app", ssl_certfile=missing)
    with pytest.raises(
        ConfigError, match=rf"^Could not set up TLS: cannot read --ssl-certfile {missing}: No such"
    ):
        config.check_options()


def tls_error(**files: object) -> str:
    with pytest.raises(ValueError) as info:
        create_ssl_context(Config(app="m:app", **files))  # type: ignore[arg-type]
    return str(info.value)


def test_tls_bad_certificate_is_named_as_the_certificate(
    certs: Certificates, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    message = tls_error(ssl_certfile=str(garbage), ssl_keyfile=str(certs.keyfile))
    assert message.startswith(f"the certificate is bad: --ssl-certfile {garbage} holds no valid")
    # a key given where the certificate belongs is a bad certificate too
    message = tls_error(ssl_certfile=str(certs.keyfile), ssl_keyfile=str(certs.keyfile))
    assert message.startswith("the certificate is bad:")


def test_tls_bad_key_is_named_as_the_key(certs: Certificates, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    message = tls_error(ssl_certfile=str(certs.certfile), ssl_keyfile=str(garbage))
    assert message.startswith(f"the key is bad: --ssl-keyfile {garbage} holds no valid PEM")
    message = tls_error(ssl_certfile=str(certs.certfile), ssl_keyfile=str(certs.certfile))
    assert message.startswith("the key is bad:")
    message = tls_error(ssl_certfile=str(certs.certfile))  # no key anywhere
    assert message.startswith(f"the key is bad: --ssl-certfile {certs.certfile} (no --ssl-keyfile)")


def test_tls_wrong_key_password_is_named(certs: Certificates, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certs.keyfile.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right"),
        )
    )
    files = {"ssl_certfile": str(certs.certfile), "ssl_keyfile": str(encrypted)}
    create_ssl_context(Config(app="m:app", ssl_keyfile_password="right", **files))
    message = tls_error(ssl_keyfile_password="wrong", **files)
    assert message == (
        f"the key is bad: --ssl-keyfile {encrypted} cannot be decrypted "
        "(wrong --ssl-keyfile-password?)"
    )


def test_tls_key_of_another_certificate_is_a_mismatch(certs: Certificates, tmp_path: Path) -> None:
    other = make_certificates(tmp_path)
    message = tls_error(ssl_certfile=str(certs.certfile), ssl_keyfile=str(other.keyfile))
    assert message == f"the key does not match the certificate: --ssl-keyfile {other.keyfile}"


def test_tls_unreadable_key_and_ca_files_are_named(certs: Certificates, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    message = tls_error(ssl_certfile=str(certs.certfile), ssl_keyfile=str(missing))
    assert message.startswith(f"cannot read --ssl-keyfile {missing}:")
    message = tls_error(
        ssl_certfile=str(certs.certfile), ssl_keyfile=str(certs.keyfile), ssl_ca_certs=str(missing)
    )
    assert message.startswith(f"cannot read --ssl-ca-certs {missing}:")


def test_check_options_refuses_a_header_that_cannot_be_sent() -> None:
    with pytest.raises(ConfigError, match=r"^Invalid --header 'X-Bad'"):
        Config(app="m:app", headers=[("X-Bad", "caf\u00e9\u20ac")]).check_options()
    with pytest.raises(ConfigError, match=r"^Invalid --header 'Bad Name'"):
        Config(app="m:app", headers=[("Bad Name", "x")]).check_options()
    Config(app="m:app", headers=[("X-Fine", "caf\u00e9")]).check_options()  # latin-1 is fine
