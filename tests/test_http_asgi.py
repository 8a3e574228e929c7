"""ASGI ``http`` semantics over the network: the scope, the receive/send state machine,
disconnects, application errors and response header validation."""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.certs import make_certificates
from tests.support.http_client import Conn, assert_alive, get, post, statuses, wait_events
from tests.support.servers import RunningServer, module_server


@pytest.fixture(scope="module")
def rooted() -> Iterator[RunningServer]:
    with module_server("http_app:app", "--root-path", "/api/v1") as srv:
        yield srv


def get_scope(http_app: RunningServer, request: bytes) -> dict:
    with Conn(http_app.port) as c:
        resp = c.request(request)
    assert resp.status == 200, resp
    return resp.json()  # type: ignore[no-any-return]


# -- scope ----------------------------------------------------------------------------------


def test_scope_fields(http_app: RunningServer) -> None:
    scope = get_scope(
        http_app,
        b"GET /scope?a=1&b=%20 HTTP/1.1\r\nHost: example.com:8080\r\nX-Mixed-Case: Value\r\n"
        b"Accept: */*\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n",
    )
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] in ("2.4", "2.5")
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert scope["headers"] == [
        ["host", "example.com:8080"],
        ["x-mixed-case", "Value"],
        ["accept", "*/*"],
        ["x-dup", "1"],
        ["x-dup", "2"],
    ]
    types = scope["types"]
    assert all(t == ["bytes", "bytes"] for t in types["headers"])
    assert types["raw_path"] == "bytes"
    assert types["query_string"] == "bytes"
    assert types["path"] == "str"
    assert types["client"] == ["str", "int"]
    assert types["server"] == ["str", "int"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", http_app.port]


def test_scope_http10(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"GET /scope HTTP/1.0\r\n\r\n")
        raw = c.read_all()
    assert b'"http_version": "1.0"' in raw


def test_scope_methods_are_uppercase_strings(http_app: RunningServer) -> None:
    for method in ("POST", "DELETE", "PATCH", "PUT", "OPTIONS"):
        scope = get_scope(
            http_app,
            f"{method} /scope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode(),
        )
        assert scope["method"] == method


def test_scope_state_is_a_shallow_copy_per_request(http_app: RunningServer) -> None:
    first = get_scope(http_app, get("/scope"))
    assert first["state"]["boot"] == "yes"
    assert "mutated_by_request" not in first["state"]
    # The first request added a key to its copy: the second must not see it.
    second = get_scope(http_app, get("/scope"))
    assert "mutated_by_request" not in second["state"]
    assert second["state"]["shared"] == {"mutable": True}


def test_root_path(rooted: RunningServer) -> None:
    scope = get_scope(rooted, get("/scope/x%20y?q=1"))
    assert scope["root_path"] == "/api/v1"
    assert scope["path"] == "/api/v1/scope/x y"
    assert scope["raw_path"] == "/api/v1/scope/x%20y"
    assert scope["query_string"] == "q=1"


def test_headers_with_obs_text_are_passed_as_bytes(http_app: RunningServer) -> None:
    scope = get_scope(http_app, b"GET /scope HTTP/1.1\r\nHost: x\r\nX-Latin: caf\xe9\r\n\r\n")
    assert ["x-latin", "caf\xe9"] in scope["headers"]


# -- receive ------------------------------------------------------------------------------


def test_messages_after_response_are_ignored(http_app: RunningServer) -> None:
    """ASGI: after the final body "any further messages on the channel will be ignored", and
    receive() returns http.disconnect. Nothing reaches the wire: the connection stays clean."""
    with Conn(http_app.port) as c:
        assert c.request(get("/after-complete")).body == b"done"
        found = wait_events(http_app, "", "after-complete")
        assert c.request(get("/next")).body == b"GET /next"
    assert found
    assert found[-1]["receive"] == "http.disconnect"
    assert found[-1]["raised"] is None


def test_disconnect_delivered_when_client_goes_away(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(post("/wait-disconnect?tag=d1", b"abc"))
        assert wait_events(http_app, "d1", "waiting")
    t0 = time.monotonic()
    found = wait_events(http_app, "d1", "disconnect")
    assert found
    assert found[0]["message"] == "http.disconnect"
    assert found[0]["t"] - t0 < 2


def test_send_after_disconnect_raises_oserror(http_app: RunningServer) -> None:
    """ASGI spec 2.4: send on a closed connection raises an OSError subclass."""
    with Conn(http_app.port) as c:
        c.send(get("/wait-disconnect?tag=d2"))
        assert wait_events(http_app, "d2", "waiting")
    found = wait_events(http_app, "d2", "send-after-disconnect")
    assert found
    assert found[0]["oserror"] is True
    # ... and the server does not log it as an application error (ASGI: "should not log").
    time.sleep(0.2)
    assert "ClientDisconnected" not in http_app.log


def test_disconnect_mid_body(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"POST /wait-body?tag=mb HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        c.send(b"x" * 10)
        time.sleep(0.2)
    found = wait_events(http_app, "mb", "body-wait")
    assert found
    assert found[0]["message"] == "http.disconnect"


def test_disconnect_mid_response_stream(http_app: RunningServer) -> None:
    sock = socket.create_connection(("127.0.0.1", http_app.port), timeout=5)
    sock.sendall(get("/stream-forever?tag=sf"))
    sock.recv(65536)
    sock.close()
    found = wait_events(http_app, "sf", "stream-end")
    assert found
    assert found[0]["oserror"] is True


def test_half_close_still_gets_the_response(http_app: RunningServer) -> None:
    """A client that shuts down its write side after the request still reads the answer."""
    with Conn(http_app.port) as c:
        c.send(get("/slow?delay=0.2&id=hc") + get("/second"))
        c.sock.shutdown(socket.SHUT_WR)
        raw = c.read_all(3)
        assert c.eof
    assert statuses(raw) == [200, 200]
    assert b"slow hc" in raw
    assert raw.endswith(b"GET /second")


def test_half_close_mid_body_is_a_disconnect(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"POST /wait-body?tag=hb HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        c.sock.shutdown(socket.SHUT_WR)
        found = wait_events(http_app, "hb", "body-wait")
        assert found
        assert found[0]["message"] == "http.disconnect"
        assert c.closed_by_server(3)


# -- application errors -------------------------------------------------------------------


def test_exception_before_response_gives_500_and_traceback(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/raise"))
        assert resp.status == 500
        assert resp.closes
        assert c.closed_by_server()
    assert http_app.wait_for_log("boom-before-start")
    assert "Traceback" in http_app.log


def test_exception_after_start_closes_connection(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(get("/raise-after-start"))
        raw = c.read_all(3)
        assert c.eof
    # Headers and the partial chunk, but never the terminating chunk: the client knows the
    # response is truncated.
    assert raw.startswith(b"HTTP/1.1 200")
    assert b"partial" in raw
    assert not raw.endswith(b"0\r\n\r\n")
    assert http_app.wait_for_log("boom-after-start")


def test_exception_after_start_before_body_can_still_be_500(http_app: RunningServer) -> None:
    """Nothing was written yet (the head waits for the body): the server may still send 500."""
    with Conn(http_app.port) as c:
        c.send(get("/raise-after-start-nobody"))
        raw = c.read_all(3)
    assert statuses(raw) == [500]
    assert raw.endswith(b"Internal Server Error")


def test_app_returning_without_response_gives_500(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/no-response"))
        assert resp.status == 500
    assert http_app.wait_for_log("without starting response")


def test_app_returning_with_incomplete_response_closes(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(get("/incomplete"))
        raw = c.read_all(3)
        assert c.eof
    assert raw.startswith(b"HTTP/1.1 200")
    assert not raw.endswith(b"0\r\n\r\n")


def test_short_content_length_closes(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(get("/short-cl"))
        raw = c.read_all(3)
        assert c.eof
    assert raw.endswith(b"12345")


def test_long_content_length_is_stopped(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(get("/long-cl"))
        raw = c.read_all(3)
        assert c.eof
    _, _, body = raw.partition(b"\r\n\r\n")
    # Nothing was written before the oversized body, so a 500 can replace the response;
    # never more body bytes than announced.
    if statuses(raw) == [200]:
        assert len(body) <= 3
    else:
        assert statuses(raw) == [500]
    found = wait_events(http_app, "", "long-cl")
    assert found
    assert found[-1]["raised"] is not None


def test_app_return_value_is_logged_not_fatal(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        assert c.request(get("/return-value")).status == 200
        assert c.request(get("/x")).status == 200


@pytest.mark.parametrize("kind", ["body-before-start", "unknown-type", "start-twice"])
def test_send_state_machine_errors(http_app: RunningServer, kind: str) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get(f"/protocol-errors?kind={kind}"))
    found = wait_events(http_app, kind, "protocol")
    assert found
    # One error type for every message the state does not allow (a RuntimeError, which is what
    # apps written against other servers catch).
    assert found[0]["raised"] == "UnexpectedMessage"
    assert found[0]["runtime_error"] is True
    # The misuse was reported to the app; its valid response afterwards still goes out.
    assert resp.status == 200
    assert resp.body == b"after"


# -- response header validation -------------------------------------------------------------

BAD_HEADERS = [
    "crlf-value",
    "lf-value",
    "cr-value",
    "nul-value",
    "ctl-value",
    "del-value",
    "space-name",
    "colon-name",
    "crlf-name",
    "empty-name",
    "str-name",
    "str-value",
    "int-value",
    "bad-cl",
    "neg-cl",
    "two-cl",
    "not-pair",
]


@pytest.mark.parametrize("kind", BAD_HEADERS)
def test_invalid_response_headers_give_500(http_app: RunningServer, kind: str) -> None:
    with Conn(http_app.port) as c:
        c.send(get(f"/headers?kind={kind}"))
        raw = c.read_all(2)
    assert statuses(raw) == [500], raw
    assert b"x-injected" not in raw.lower()
    assert raw.count(b"\r\n\r\n") == 1


@pytest.mark.parametrize("kind", ["ok-obs-text", "ok-set-cookie", "ok-upper", "ok-tuple-list"])
def test_valid_response_headers_pass(http_app: RunningServer, kind: str) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get(f"/headers?kind={kind}"))
    assert resp.status == 200
    if kind == "ok-set-cookie":
        assert resp.header_all("set-cookie") == [b"a=1", b"b=2"]
    if kind == "ok-obs-text":
        assert resp.header("x-a") == b"caf\xc3\xa9 \t x"


@pytest.mark.parametrize(
    "status", ["99", "100", "103", "101", "1000", "600", "-1", "abc", "true", "200.0"]
)
def test_invalid_status_gives_500(http_app: RunningServer, status: str) -> None:
    with Conn(http_app.port) as c:
        c.send(get(f"/bad-status?status={status}"))
        raw = c.read_all(2)
    assert statuses(raw) == [500], raw


@pytest.mark.parametrize("code", [418, 201, 226])
def test_int_enum_status_is_an_int(http_app: RunningServer, code: int) -> None:
    """ASGI: ``status`` is an int, and an ``IntEnum`` such as ``HTTPStatus`` is one (uvicorn and
    hypercorn accept it); first use of a code and a cached one alike."""
    for _ in range(2):
        with Conn(http_app.port) as c:
            resp = c.request(get(f"/bad-status?status=enum-{code}"))
        assert resp.status == code
        assert resp.raw_head.startswith(b"HTTP/1.1 %d " % code)
        assert resp.body == b"x"


def test_float_status_is_refused_even_when_its_int_is_cached(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        assert c.request(get("/bad-status?status=200")).status == 200
    with Conn(http_app.port) as c:
        c.send(get("/bad-status?status=200.0"))
        assert statuses(c.read_all(2)) == [500]


def test_server_survives_errors(http_app: RunningServer) -> None:
    for path in ("/raise", "/headers?kind=crlf-value", "/no-response", "/incomplete"):
        with Conn(http_app.port) as c:
            c.send(get(path))
            c.read_all(0.5)
    assert_alive(http_app)
    r = httpx.get(http_app.url + "/stream?n=2&size=2")
    assert r.text == "aabb"


# -- transports: TLS, unix sockets, graceful shutdown ---------------------------------------------


def test_scope_scheme_https(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    srv = serve("http_app:app", "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
    assert srv.scheme == "https"
    import ssl

    r = httpx.get(srv.url + "/scope", verify=ssl.create_default_context(cafile=str(cafile)))
    scope = r.json()
    assert scope["scheme"] == "https"
    assert scope["types"]["client"] == ["str", "int"]


def _tls_exchange_then_close_notify(port: int, context: ssl.SSLContext, request: bytes) -> bytes:
    """Send ``request`` and our close_notify in one TCP send (a TLS half-close), then read."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    answer = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                assert data, "closed during the handshake"
                incoming.write(data)
        tls.write(request)
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.unwrap()  # queues close_notify behind the request record
        sock.sendall(outgoing.read())
        while data := sock.recv(65536):
            incoming.write(data)
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                while chunk := tls.read(65536):
                    answer += chunk
    return bytes(answer)


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="needs eager Tasks (3.12+): on 3.11 the answer is lost"
)
def test_tls_request_with_close_notify_in_the_same_read_is_answered(serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = make_certificates(tmp_path, "127.0.0.1")
    srv = serve(
        "http_app:app", "--ssl-certfile", str(certs.certfile), "--ssl-keyfile", str(certs.keyfile)
    )
    for _ in range(5):  # each try is one TCP send; the server must answer every one
        answer = _tls_exchange_then_close_notify(srv.port, certs.client_context(), get("/"))
        assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_scope_over_unix_socket(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.support.servers import APPS, ROOT

    path = tmp_path / "s.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "krandog_asgi",
            "http_app:app",
            "--app-dir",
            str(APPS),
            "--uds",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(ROOT),
    )
    try:
        deadline = time.monotonic() + 15
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, base_url="http://local") as client:
            scope = client.get("/scope").json()
        assert scope["server"] == [str(path), None]
        assert scope["client"] is None
        assert scope["scheme"] == "http"
    finally:
        proc.terminate()
        proc.wait(10)


def test_graceful_shutdown_finishes_in_flight_request(serve) -> None:  # type: ignore[no-untyped-def]
    import signal
    import threading

    srv = serve("http_app:app")
    idle = Conn(srv.port)
    assert idle.request(get("/idle")).status == 200
    result: dict[str, object] = {}

    def slow() -> None:
        with Conn(srv.port) as c:
            resp = c.request(get("/slow?delay=1&id=gs"))
            result["body"] = resp.body
            result["closes"] = resp.closes

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    # The idle keep-alive connection is closed promptly.
    assert idle.closed_by_server(2)
    idle.close()
    thread.join(10)
    assert result == {"body": b"slow gs", "closes": True}
    assert srv.proc.wait(10) == 0
