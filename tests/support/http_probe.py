"""Differential HTTP/1.1 probe: the same raw bytes to krandog-asgi, uvicorn and hypercorn.

Each server runs ``tests/apps/probe_echo.py`` (plain ASGI) in a subprocess on a free loopback
port. Every case in ``CASES`` is sent on a fresh connection; what comes back is recorded as
parsed responses (status, headers, body) plus whether the server closed the connection. Each
case also says what RFC 9110 / 9112 require and checks it, so the table shows where a server
departs from the RFC, not merely from the others.

    pip install -e ".[probe]"   # uvicorn[standard] and hypercorn, the peers
    python -m tests.support.http_probe --json docs/conformance.json --markdown docs/conformance.md
    python -m tests.support.http_probe --servers krandog --case cl-and-te   # one quick look

``--from-json`` re-renders the table from a committed run without starting any server.
The case list is also imported by ``tests/test_http_probe.py``, which runs it against our
server only and fails on any case where we depart from the RFC.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"
APP = "probe_echo:app"
ROOT_PATH = "/mnt"  # every server runs with this root_path, to compare how it is applied
IDLE = 0.5  # seconds without data after which a connection counts as kept open
PAUSE = 0.3  # between the parts of a case (e.g. head, then body after 100 Continue)
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


# -- servers ----------------------------------------------------------------------------------


def _commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "krandog": [
            *(py, "-m", "krandog_asgi", APP, "--app-dir", str(APPS), "--port", str(port)),
            *("--no-access-log", "--root-path", ROOT_PATH),
        ],
        "uvicorn": [
            *(py, "-m", "uvicorn", APP, "--app-dir", str(APPS), "--port", str(port)),
            *("--http", "httptools", "--loop", "uvloop", "--no-access-log"),
            *("--root-path", ROOT_PATH),
        ],
        "hypercorn": [
            *(py, "-m", "hypercorn", APP, "--bind", f"127.0.0.1:{port}"),
            *("--root-path", ROOT_PATH),
        ],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(name: str) -> tuple[subprocess.Popen[bytes], int, Any]:
    """Start ``name`` on a free port; (process, port, its log file). A port taken between our
    check and the server's bind (other tests run too) is retried on a new one."""
    for _ in range(3):
        port = _free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by running())
        proc = subprocess.Popen(
            _commands(port)[name],
            cwd=str(APPS),
            env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port, log
            except OSError:
                time.sleep(0.05)
        _stop(proc)
        log.seek(0)
        output = log.read().decode(errors="replace")[-2000:]
        log.close()
    raise RuntimeError(f"{name} did not start:\n{output}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def running(name: str) -> Iterator[int]:
    """Start server ``name`` with the probe app; yield its port; stop it."""
    proc, port, log = _start(name)
    try:
        yield port
    finally:
        _stop(proc)
        log.close()


# -- one exchange -----------------------------------------------------------------------------


@dataclass
class Result:
    responses: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    tail: str = ""  # bytes that did not parse as a response

    @property
    def statuses(self) -> list[int]:
        return [r["status"] for r in self.responses]

    @property
    def final(self) -> list[dict[str, Any]]:
        return [r for r in self.responses if r["status"] >= 200]

    def first(self) -> dict[str, Any] | None:
        final = self.final
        return final[0] if final else None

    def echo(self, index: int = 0) -> dict[str, Any] | None:
        final = self.final
        if len(final) <= index or final[index]["status"] != 200:
            return None
        try:
            value = json.loads(final[index]["body"])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def smuggled(self) -> bool:
        """A request sent after a refused one was answered."""
        first = self.first()
        refused = first is None or first["status"] >= 400
        return refused and any("/smuggled" in r["body"] for r in self.responses)

    def to_json(self) -> dict[str, Any]:
        return {"responses": self.responses, "closed": self.closed, "tail": self.tail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(data["responses"], data["closed"], data["tail"])


def _recv_all(sock: socket.socket, idle: float) -> tuple[bytes, bool]:
    chunks, closed = [], False
    sock.settimeout(idle)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:  # reset: closed too
            closed = True
            break
        if not chunk:
            closed = True
            break
        chunks.append(chunk)
    return b"".join(chunks), closed


def exchange(port: int, parts: tuple[bytes, ...], head_only: bool = False) -> Result:
    """Send ``parts`` (``PAUSE`` apart) on one connection; parse whatever comes back."""
    data = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for i, part in enumerate(parts):
            try:
                sock.sendall(part)
            except OSError:
                closed = True
                break
            if i < len(parts) - 1:
                got, closed = _recv_all(sock, PAUSE)
                data += got
                if closed:
                    break
        if not closed:
            got, closed = _recv_all(sock, IDLE)
            data += got
    result = Result(closed=closed)
    result.tail = _parse(data, result.responses, head_only, closed)
    return result


def _parse(data: bytes, out: list[dict[str, Any]], head_only: bool, closed: bool) -> str:
    """Split ``data`` into responses; returns the bytes that are not a response (latin-1).
    ``head_only``: the first request was HEAD, so its response has no body."""
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        match = re.fullmatch(rb"HTTP/(\d\.\d) (\d{3})(?: ([^\r\n]*))?", head.split(b"\r\n")[0])
        if not sep or match is None:
            return data.decode("latin-1")
        headers = [line.split(b":", 1) for line in head.split(b"\r\n")[1:]]
        pairs = [(n.decode("latin-1"), v.strip().decode("latin-1")) for n, v in headers if v]
        status = int(match.group(2))
        low = {n.lower(): v for n, v in pairs}
        body = b""
        if status >= 200 and status not in (204, 304) and not (head_only and not out):
            if low.get("transfer-encoding", "").lower() == "chunked":
                body, rest = _dechunk(rest)
            elif "content-length" in low and low["content-length"].isdigit():
                n = int(low["content-length"])
                body, rest = rest[:n], rest[n:]
            elif closed:
                body, rest = rest, b""
        version = match.group(1).decode()
        reason = (match.group(3) or b"").decode("latin-1")
        out.append(
            {
                "version": version,
                "status": status,
                "reason": reason,
                "headers": pairs,
                "body": body.decode("latin-1"),
            }
        )
        data = rest
    return ""


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    body = []
    while True:
        line, sep, data = data.partition(b"\r\n")
        if not sep:
            return b"".join(body) + b"<truncated chunked body>", b""
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            _, _, data = data.partition(b"\r\n")  # (no trailers expected from the app)
            return b"".join(body), data
        body.append(data[:size])
        data = data[size + 2 :]


# -- the cases --------------------------------------------------------------------------------

Check = Callable[[Result], bool]


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    parts: tuple[bytes, ...]
    rfc: str  # what RFC 9110 / 9112 (or the ASGI spec) require, in a few words
    ok: Check
    head_only: bool = False  # the request was HEAD: responses have no body
    known: str = ""  # why krandog departs from the RFC here (a known, documented gap)


def reject(*codes: int) -> Check:
    """Refused with one of ``codes``, the connection closed, nothing after it answered."""

    def check(r: Result) -> bool:
        first = r.first()
        return first is not None and first["status"] in codes and r.closed and not r.smuggled

    return check


def echo(pred: Callable[[dict[str, Any]], bool], keep: bool | None = None) -> Check:
    """Served (200 echo) and ``pred(echo)`` holds; ``keep``: the connection stays open or not."""

    def check(r: Result) -> bool:
        e = r.echo()
        return e is not None and pred(e) and (keep is None or r.closed != keep)

    return check


def either(*checks: Check) -> Check:
    return lambda r: any(c(r) for c in checks)


def header(r: Result, name: str, index: int = 0) -> list[str]:
    final = r.final
    if len(final) <= index:
        return []
    return [v for n, v in final[index]["headers"] if n.lower() == name]


def _req(head: str, body: bytes = b"", tail: bytes = SMUGGLED) -> tuple[bytes, ...]:
    return (head.encode("latin-1") + b"\r\n" + body + tail,)


def _post(fields: str, body: bytes = b"", version: str = "1.1") -> tuple[bytes, ...]:
    host = "Host: x\r\n" if version == "1.1" else ""
    return _req(f"POST /echo HTTP/{version}\r\n{host}{fields}", body)


def _get(target: str = "/echo", fields: str = "", version: str = "1.1") -> tuple[bytes, ...]:
    return _req(f"GET {target} HTTP/{version}\r\nHost: x\r\n{fields}", tail=b"")


def body_is(text: bytes) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["body"] == text.decode("latin-1")


CHUNKED_ABC = b"3\r\nabc\r\n0\r\n\r\n"
BAD = "Bad request: 400, close, nothing after it answered"

CASES: list[Case] = []
# fmt: off


def case(name: str, group: str, parts: tuple[bytes, ...], rfc: str, ok: Check, **kw: Any) -> None:
    CASES.append(Case(name, group, parts, rfc, ok, **kw))


# Content-Length / Transfer-Encoding (RFC 9112 §6)
G = "framing"
case("cl-and-te", G, _post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", CHUNKED_ABC),
     "§6.1/§6.3: reject (400) or use TE and close after", either(reject(400), echo(body_is(b"abc"), keep=False)))
case("te-and-cl", G, _post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", CHUNKED_ABC),
     "§6.1/§6.3: reject (400) or use TE and close after", either(reject(400), echo(body_is(b"abc"), keep=False)))
case("cl-duplicate-same", G, _post("Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"),
     "RFC 9110 §8.6: may reject (400) or use the one value", either(reject(400), echo(body_is(b"abc"))))
case("cl-list-same", G, _post("Content-Length: 3, 3\r\n", b"abc"),
     "RFC 9110 §8.6: may reject (400) or use the one value", either(reject(400), echo(body_is(b"abc"))))
case("cl-duplicate-different", G, _post("Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"),
     "§6.3 item 5: 400 and close", reject(400))
case("cl-plus-sign", G, _post("Content-Length: +3\r\n", b"abc"), "§6.3: invalid, 400 and close", reject(400))
case("cl-minus-sign", G, _post("Content-Length: -3\r\n", b"abc"), "§6.3: invalid, 400 and close", reject(400))
case("cl-hex", G, _post("Content-Length: 0x3\r\n", b"abc"), "§6.3: invalid, 400 and close", reject(400))
case("cl-inner-space", G, _post("Content-Length: 1 3\r\n", b"abc" * 5), "§6.3: invalid, 400 and close", reject(400))
case("cl-leading-space", G, _post("Content-Length:    3\r\n", b"abc"),
     "RFC 9110 §5.5: OWS around the value is not part of it: 200", echo(body_is(b"abc")))
case("cl-trailing-space", G, _post("Content-Length: 3  \r\n", b"abc"),
     "RFC 9110 §5.5: OWS around the value is not part of it: 200", echo(body_is(b"abc")))
case("cl-leading-zeros", G, _post("Content-Length: 0003\r\n", b"abc"),
     "RFC 9110 §8.6: 1*DIGIT, leading zeros valid: 200", echo(body_is(b"abc")))
case("cl-overflow", G, _post("Content-Length: 99999999999999999999999\r\n"),
     "§6.3: invalid (or 413), close", reject(400, 413))
case("te-chunked-ows", G, _post("Transfer-Encoding:  chunked \r\n", CHUNKED_ABC),
     "RFC 9110 §5.5: OWS trimmed, chunked: 200", echo(body_is(b"abc")))
case("te-uppercase", G, _post("Transfer-Encoding: CHUNKED\r\n", CHUNKED_ABC),
     "RFC 9112 §7: coding names are case-insensitive: 200", echo(body_is(b"abc")))
case("te-chunked-identity", G, _post("Transfer-Encoding: chunked, identity\r\n", CHUNKED_ABC),
     "§6.3: chunked not final: 400 and close", reject(400))
case("te-identity", G, _post("Transfer-Encoding: identity\r\n", b"abc"),
     "§6.3: chunked not final: 400 and close (501 for an unknown coding is a SHOULD)", reject(400, 501))
case("te-gzip-chunked", G, _post("Transfer-Encoding: gzip, chunked\r\n", CHUNKED_ABC),
     "§6.1: unsupported coding SHOULD be 501; close", reject(501, 400))
case("te-obs-fold", G, _post("Transfer-Encoding:\r\n chunked\r\n", CHUNKED_ABC),
     "§5.2: obs-fold: 400 (or unfold)", either(reject(400), echo(body_is(b"abc"))))
case("te-http10", G, _post("Transfer-Encoding: chunked\r\n", CHUNKED_ABC, version="1.0"),
     "§6.1: HTTP/1.0 with TE: faulty framing, close after (400 is safest)",
     either(reject(400), echo(body_is(b"abc"), keep=False)))
case("te-http10-with-cl", G, _post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", CHUNKED_ABC, version="1.0"),
     "§6.1: HTTP/1.0 with TE: faulty framing, close after", either(reject(400), echo(body_is(b"abc"), keep=False)))
case("chunk-size-overflow", G, _post("Transfer-Encoding: chunked\r\n", b"fffffffffffffffff1\r\nabc\r\n0\r\n\r\n"),
     "§7.1: size must fit: 400 and close", reject(400, 413))
case("chunk-ext-valid", G, _post("Transfer-Encoding: chunked\r\n", b'3;a=b;c="d e"\r\nabc\r\n0\r\n\r\n'),
     "§7.1.1: extensions ignored: 200", echo(body_is(b"abc")))
case("chunk-ext-bare-lf", G, _post("Transfer-Encoding: chunked\r\n", b"3;a\nb\r\nabc\r\n0\r\n\r\n"),
     "§7.1.1: invalid extension: 400", reject(400))
case("chunk-bad-terminator", G, _post("Transfer-Encoding: chunked\r\n", b"3\r\nabcXX0\r\n\r\n"),
     "§7.1: chunk-data CRLF required: 400", reject(400))
case("chunk-lf-only", G, _post("Transfer-Encoding: chunked\r\n", b"3\nabc\n0\n\n"),
     "§7.1 / §2.2: bare LF in chunked body: 400 (safest)", reject(400))
case("chunk-size-leading-zeros-upper", G, _post("Transfer-Encoding: chunked\r\n", b"000A\r\n0123456789\r\n0\r\n\r\n"),
     "§7.1: chunk-size = 1*HEXDIG: 200", echo(body_is(b"0123456789")))
case("chunk-ext-bws", G, _post("Transfer-Encoding: chunked\r\n", b"3 ;a=b\r\nabc\r\n0\r\n\r\n"),
     "§7.1.1 / RFC 9110 §5.6.3: BWS before ';' MUST be parsed and removed: 200 (400 is stricter)",
     either(echo(body_is(b"abc")), reject(400)))
case("chunk-size-trailing-space", G, _post("Transfer-Encoding: chunked\r\n", b"3 \r\nabc\r\n0\r\n\r\n"),
     "§7.1: no whitespace after chunk-size without an extension: 400", reject(400))
case("trailer-content-length", G, _post("Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n"),
     "RFC 9110 §6.5: a sender MUST NOT send it; ignore it (200, next intact) or 400",
     either(reject(400), lambda r: r.echo() is not None and r.echo()["body"] == "abc" and len(r.final) == 2))  # type: ignore[index]
case("chunk-ext-huge", G, _post("Transfer-Encoding: chunked\r\n", b"1;" + b"a" * 200_000 + b"\r\nx\r\n0\r\n\r\n"),
     "§7.1.1: a server ought to limit chunk extensions: a 4xx", lambda r: bool(r.final) and 400 <= r.final[0]["status"] < 500 and r.closed)
case("trailer-huge", G, _post("Transfer-Encoding: chunked\r\n", b"1\r\nx\r\n0\r\nX-T: " + b"a" * 200_000 + b"\r\n\r\n"),
     "§7.1.2 / RFC 6585 §5: trailer section bounded like headers: 431 (or 400)", reject(431, 400))
case("chunked-trailers", G, _post("Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
     "§7.1.2: trailers accepted, not merged into the head: 200",
     echo(lambda e: e["body"] == "abc" and all(n.lower() != "x-t" for n, _ in e["headers"])))

# Header syntax (RFC 9112 §2, §5)
G = "fields"
case("bare-lf-line-endings", G, (b"GET /echo HTTP/1.1\nHost: x\n\n" + SMUGGLED,),
     "§2.2: MAY accept bare LF; rejecting (400) is the safe choice", either(reject(400), echo(lambda e: True)))
case("bare-cr-in-value", G, _get(fields="X-A: a\rb\r\n"), "§2.2: bare CR invalid: 400 (or SP)",
     either(reject(400), echo(lambda e: ["x-a", "a b"] in e["headers"])))
case("nul-in-value", G, _get(fields="X-A: a\x00b\r\n"), "RFC 9110 §5.5: NUL: 400 (or SP)", reject(400))
case("ctl-in-value", G, _get(fields="X-A: a\x01b\r\n"), "RFC 9110 §5.5: CTL invalid (MAY retain)",
     either(reject(400), echo(lambda e: True)))
case("nul-in-name", G, _get(fields="X\x00A: b\r\n"), "RFC 9110 §5.1: name is a token: 400", reject(400))
case("space-before-colon", G, _get(fields="X-A : b\r\n"), "§5.1: MUST 400", reject(400))
case("no-colon", G, _get(fields="X-A b\r\n"), "§5: invalid field line: 400", reject(400))
case("obs-fold", G, _get(fields="X-A: a\r\n b\r\n"), "§5.2: 400 or unfold to SP",
     either(reject(400), echo(lambda e: ["x-a", "a b"] in e["headers"])))
case("long-header", G, _get(fields="X-A: " + "a" * 100_000 + "\r\n"), "RFC 6585 §5: 431", reject(431, 400))
case("many-headers", G, _get(fields="".join(f"X-{i}: v\r\n" for i in range(500))),
     "RFC 6585 §5: 431 if over the limit (or serve)", either(reject(431, 400), echo(lambda e: True)))
case("long-url", G, _get("/" + "a" * 100_000), "§3: MUST 414 when longer than it will parse", reject(414))

# Request line (RFC 9112 §3)
G = "request-line"
case("absolute-form", G, _get("http://example.com:8080/p?q=1"),
     "§3.2.2: MUST accept; Host replaced by the authority",
     echo(lambda e: e["raw_path"].endswith("/p") and e["query_string"] == "q=1"
          and ["host", "example.com:8080"] in [[n.lower(), v] for n, v in e["headers"]]))
case("asterisk-get", G, _get("*"), "§3.2.4: only OPTIONS: 400", reject(400))
case("asterisk-options", G, (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",), "§3.2.4: valid: 200",
     lambda r: bool(r.final) and r.final[0]["status"] == 200)
case("connect", G, (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n" + SMUGGLED,),
     "RFC 9110 §9.3.6: not a tunnel here: 4xx/5xx, no smuggling",
     lambda r: bool(r.final) and r.final[0]["status"] >= 400 and not r.smuggled)
case("invalid-method-char", G, (b"G@T /echo HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED,),
     "RFC 9110 §9.1: method is a token: 400", reject(400))
case("unknown-method", G, (b"FOO /echo HTTP/1.1\r\nHost: x\r\n\r\n",),
     "RFC 9110 §9.1: valid token; 501 if not implemented (or pass to app)",
     lambda r: bool(r.final) and r.final[0]["status"] in (200, 405, 501))
case("whitespace-after-start-line", G, (b"GET /echo HTTP/1.1\r\n Host: x\r\nHost: x\r\n\r\n" + SMUGGLED,),
     "§2.2: reject, or ignore the whitespace-preceded line", either(reject(400), echo(lambda e: len([h for h in e["headers"] if h[0].lower() == "host"]) == 1)))
case("double-space-request-line", G, (b"GET  /echo HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED,),
     "§3: single SP separators; SHOULD 400 (or parse on whitespace)", either(reject(400), echo(lambda e: True)))
case("trailing-space-request-line", G, (b"GET /echo HTTP/1.1 \r\nHost: x\r\n\r\n" + SMUGGLED,),
     "§3: invalid request-line: 400", either(reject(400, 505), echo(lambda e: True)))
case("body-on-get-without-length", G, (b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nabc",),
     "§6.3 item 7: no length, no body: 'abc' is the next request (400)", lambda r: r.statuses == [200, 400] and r.closed)
case("http09-simple", G, (b"GET /echo\r\n\r\n",), "§2.3: no HTTP/0.9 support required: 400 (or 505)",
     lambda r: bool(r.final) and r.final[0]["status"] in (400, 505) and r.closed)
case("http09-version", G, _get(version="0.9"), "RFC 9110 §15.6.6: 505", reject(505, 400))
case("http20-version", G, _get(version="2.0"), "RFC 9110 §15.6.6: 505", reject(505, 400))
case("http12-version", G, _get(version="1.2"), "RFC 9110 §6.2: serve as 1.1 (response HTTP/1.1)",
     lambda r: bool(r.final) and r.final[0]["status"] == 200 and r.final[0]["version"] == "1.1")
case("empty-host", G, (b"GET /echo HTTP/1.1\r\nHost:\r\n\r\n",),
     "§3.2 / RFC 9110 §7.2: an empty Host is valid (no authority): 200", echo(lambda e: True))
case("host-empty-with-port", G, (b"GET /echo HTTP/1.1\r\nHost: :80\r\n\r\n",),
     "RFC 3986 reg-name may be empty: 200 (400 defensible)", either(echo(lambda e: True), reject(400)))
case("host-ipv6", G, (b"GET /echo HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",), "RFC 3986 IP-literal: 200", echo(lambda e: True))
case("host-underscore", G, (b"GET /echo HTTP/1.1\r\nHost: my_host.local\r\n\r\n",), "RFC 3986 reg-name allows '_': 200", echo(lambda e: True))
case("missing-host", G, (b"GET /echo HTTP/1.1\r\n\r\n",), "§3.2: MUST 400", reject(400))
case("two-hosts", G, (b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",), "§3.2: MUST 400", reject(400))
case("host-userinfo", G, (b"GET /echo HTTP/1.1\r\nHost: u@a\r\n\r\n",), "§3.2: invalid Host value: MUST 400", reject(400))
case("http10-no-host", G, (b"GET /echo HTTP/1.0\r\n\r\n",), "§3.2: Host optional in 1.0: 200", echo(lambda e: True))
case("upgrade-h2c-with-body", G, _post("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 3\r\n", b"abc"),
     "RFC 9110 §7.8: a server may ignore Upgrade: serve it (200 with the body), no smuggling",
     lambda r: r.echo() is not None and r.echo()["body"] == "abc" and not r.smuggled)  # type: ignore[index]
case("upgrade-unknown-get", G, _get(fields="Connection: Upgrade\r\nUpgrade: foo/1\r\n"),
     "RFC 9110 §7.8: unknown protocol: ignore Upgrade, serve as HTTP/1.1", echo(lambda e: True))
case("pipeline-after-error", G, (b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nX : y\r\nHost: x\r\n\r\n" + SMUGGLED,),
     "first answered, then 400 and close, nothing after",
     lambda r: r.statuses == [200, 400] and r.closed and not r.smuggled)

# Targets and the scope
G = "target"
case("pct-2f", G, _get("/a%2Fb"), "ASGI: path decoded, raw_path as sent",
     echo(lambda e: e["raw_path"].endswith("/a%2Fb") and e["path"].endswith("/a/b")))
case("pct-00", G, _get("/a%00b"), "ASGI: path decoded (NUL included) or 400",
     either(reject(400), echo(lambda e: e["path"].endswith("/a\x00b"))))
case("non-ascii-target", G, _get("/\xe9"), "§3.2: not a valid target: 400 SHOULD (lenient: serve)",
     either(reject(400), echo(lambda e: True)))
case("query-with-hash", G, _get("/echo?a=1#frag"), "RFC 3986: fragment is not part of the target: 400, or drop it",
     either(reject(400), echo(lambda e: "frag" not in e["query_string"])))
case("root-path", G, _get("/x"), "ASGI 2.x: root_path given; path includes it",
     echo(lambda e: e["root_path"] == ROOT_PATH and e["path"] == ROOT_PATH + "/x"))

# Connection management, Expect (RFC 9112 §9, RFC 9110 §10.1.1)
G = "connection"
case("connection-keep-alive-close", G, _get(fields="Connection: keep-alive, close\r\n"),
     "§9.6: close in the list wins", lambda r: r.statuses == [200] and r.closed)
case("connection-close-uppercase", G, _get(fields="Connection: CLOSE\r\n"),
     "RFC 9110 §7.6.1: option names case-insensitive: close", lambda r: r.statuses == [200] and r.closed)
case("duplicate-headers-kept", G, _get(fields="X-A: 1\r\nX-B: 2\r\nX-A: 3\r\n"),
     "ASGI: repeated fields kept, in order",
     echo(lambda e: [v for n, v in e["headers"] if n == "x-a"] == ["1", "3"]))
case("obs-text-value", G, _get(fields="X-A: caf\xe9\r\n"), "RFC 9110 §5.5: obs-text allowed: 200 (bytes as sent)",
     echo(lambda e: ["x-a", "caf\xe9"] in e["headers"]))
case("connection-close", G, _get(fields="Connection: close\r\n"),
     "§9.6: answer with close, then close", lambda r: r.statuses == [200] and r.closed)
case("http10-keep-alive", G, (b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",),
     "§9.3: 1.0 keep-alive may persist (if response says so)",
     lambda r: r.statuses == [200] and (r.closed or "keep-alive" in ",".join(header(r, "connection")).lower()))
case("http10-default-close", G, (b"GET /echo HTTP/1.0\r\n\r\n",), "§9.3: 1.0 without keep-alive: close",
     lambda r: r.statuses == [200] and r.closed)
case("expect-100", G, (b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", b"abc"),
     "RFC 9110 §10.1.1: 100 then final (or final only)",
     lambda r: r.statuses in ([100, 200], [200]) and r.echo() is not None and r.echo()["body"] == "abc")  # type: ignore[index]
case("expect-100-mixed-case", G, (b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", b"abc"),
     "RFC 9110 §10.1.1: value is case-insensitive: 100 then 200",
     lambda r: r.statuses == [100, 200])
case("expect-unknown", G, _post("Expect: foo\r\nContent-Length: 3\r\n", b"abc", ),
     "RFC 9110 §10.1.1: MAY 417", lambda r: bool(r.final) and r.final[0]["status"] in (417, 200) and not r.smuggled)
case("expect-100-http10", G, (b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", b"abc"),
     "RFC 9110 §10.1.1: MUST ignore in 1.0 (no 100)", lambda r: r.statuses == [200])

# Responses the app gets wrong (RFC 9110 §6.4.1, §8.6, §9.3.2, §15.3.5, §15.4.5)
G = "response"
case("head-with-app-body", G, (b"HEAD /resp/body HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",),
     "§9.3.2: no content on HEAD; next response intact",
     lambda r: r.statuses == [200, 200] and r.tail == "", head_only=True)
case("204-with-app-body", G, (b"GET /resp/204-body HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",),
     "RFC 9110 §15.3.5 / §8.6: no body, no Content-Length",
     lambda r: r.statuses == [204, 200] and not header(r, "content-length") and r.echo(1) is not None)
case("304-with-app-body", G, (b"GET /resp/304-body HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",),
     "RFC 9110 §15.4.5: no body", lambda r: r.statuses == [304, 200] and r.echo(1) is not None)
case("app-cl-too-long", G, (b"GET /resp/cl-too-long HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",),
     "§8 / RFC 9110 §8.6: body shorter than its length: the server must close (incomplete)",
     lambda r: r.closed and len(r.final) <= 1)
case("app-cl-too-short", G, (b"GET /resp/cl-too-short HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",),
     "RFC 9110 §8.6: never send more than Content-Length (500, or cut and close)",
     lambda r: r.tail == "" and all(len(x["body"]) <= 3 for x in r.final if x["status"] == 200 and not x["body"].startswith("{")))
case("app-crlf-in-value", G, _get("/resp/crlf-value"), "RFC 9110 §5.5: never emit CR/LF in a value (500)",
     lambda r: not header(r, "x-injected") and bool(r.final) and r.final[0]["status"] == 500)
case("app-lf-in-value", G, _get("/resp/lf-value"), "RFC 9110 §5.5: never emit LF in a value (500)",
     lambda r: not header(r, "x-injected") and bool(r.final) and r.final[0]["status"] == 500)
case("app-nul-in-value", G, _get("/resp/nul-value"), "RFC 9110 §5.5: never emit NUL in a value (500)",
     lambda r: bool(r.final) and r.final[0]["status"] == 500)
case("app-crlf-in-name", G, _get("/resp/crlf-name"), "RFC 9110 §5.1: name must be a token (500)",
     lambda r: not header(r, "x-injected") and bool(r.final) and r.final[0]["status"] == 500)
case("app-space-in-name", G, _get("/resp/space-name"), "RFC 9110 §5.1: name must be a token (500)",
     lambda r: bool(r.final) and r.final[0]["status"] == 500)
case("app-upper-case-name", G, _get("/resp/upper-name"), "RFC 9110 §5.1: names case-insensitive; sent as is or lower",
     lambda r: header(r, "x-upper-case") == ["Yes"])
case("app-duplicate-set-cookie", G, _get("/resp/set-cookie"), "RFC 9110 §5.3: Set-Cookie lines never combined",
     lambda r: header(r, "set-cookie") == ["a=1", "b=2"])
case("app-connection-close", G, _get("/resp/connection-close"), "§9.6: app's close honoured: close after",
     lambda r: r.statuses == [200] and r.closed)
case("app-cl-twice-same", G, _get("/resp/cl-twice"), "RFC 9110 §8.6: one Content-Length on the wire (clients may refuse two)",
     lambda r: r.statuses == [200] and len(header(r, "content-length")) == 1 and r.final[0]["body"] == "hello")
case("app-intenum-status", G, _get("/resp/intenum-status"), "ASGI: status is an int; HTTPStatus is one: 418",
     lambda r: r.statuses == [418] and r.final[0]["body"] == "hello")
case("app-stream-http10", G, (b"GET /resp/stream HTTP/1.0\r\n\r\n",), "§6.1: no chunked to 1.0: close-delimited",
     lambda r: r.statuses == [200] and r.closed and r.final[0]["body"] == "hello"
     and not header(r, "transfer-encoding"))
# fmt: on


# -- ASGI behaviour (not on the wire) ---------------------------------------------------------


def _get_and_wait(port: int, path: str, linger: float) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        time.sleep(linger)  # the app goes on after its response (or waits for the client)


def _ws(port: int, path: str) -> Any:
    """Open a WebSocket to ``path``: the close (code, reason) the server sent, or the
    status and body of the HTTP response that refused the upgrade."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(f"ws://127.0.0.1:{port}{path}", open_timeout=5) as ws:
            if path == "/disconnect":
                ws.close(4100, "client bye")
                time.sleep(0.3)
                return None
            try:
                ws.recv(timeout=5)
            except ConnectionClosed as exc:
                return [exc.rcvd.code, exc.rcvd.reason] if exc.rcvd else None
            return "no close"
    except InvalidStatus as exc:
        return [exc.response.status_code, exc.response.body.decode("latin-1")]


def asgi_checks(port: int) -> dict[str, Any]:
    """Drive the ``/asgi/`` and WebSocket paths of the probe app; collect what it recorded."""
    _get_and_wait(port, "/asgi/after-response", 1.3)
    _get_and_wait(port, "/asgi/second-receive", 0.8)
    _get_and_wait(port, "/asgi/client-gone", 0.3)
    for _ in range(2):  # the second request must not see what the first added to its state
        _get_and_wait(port, "/asgi/scope", 0.3)
    _get_and_wait(port, "/asgi/body-before-start", 0.3)
    wire = {p: _ws(port, p) for p in ("/scope", "/send-none", "/disconnect", "/deny")}
    wire["/close-before-accept"] = _ws(port, "/close-before-accept")
    time.sleep(0.3)
    result = exchange(port, (b"GET /asgi/results HTTP/1.1\r\nHost: x\r\n\r\n",))
    first = result.first()
    recorded = json.loads(first["body"]) if first else {}
    recorded["wire"] = wire
    return recorded


def _scope_types_ok(types: dict[str, str], websocket: bool) -> bool:
    want = {
        "http_version": "str",
        "scheme": "str",
        "path": "str",
        "raw_path": "bytes",
        "query_string": "bytes",
        "root_path": "str",
        "headers": "list",
        "asgi": "dict",
    }
    want.update({"subprotocols": "list"} if websocket else {"method": "str"})
    return all(types.get(k) == v for k, v in want.items()) and types.get("client") in (
        "tuple",
        "list",
    )


# (where it was recorded, what, ASGI 2.5 says, check)
# fmt: off
ASGI_CHECKS: list[tuple[str, str, str, Callable[[Any], bool]]] = [
    ("/asgi/scope", "types", "http scope key types (str/bytes/list/tuple)", lambda v: _scope_types_ok(v, False)),
    ("/asgi/scope", "asgi", "asgi.version 3.0 and a spec_version", lambda v: v.get("version") == "3.0" and "spec_version" in v),
    ("/asgi/scope", "state", "lifespan state: a shallow copy per request", lambda v: "shared" in v and "added" not in v),
    ("/asgi/after-response", "receive after the response", "http.disconnect at once", lambda v: v == "http.disconnect"),
    ("/asgi/after-response", "send after the response", "ignored (no exception)", lambda v: v == "nothing raised"),
    ("/asgi/second-receive", "second receive, client still there", "blocks until the client leaves", lambda v: v == "blocks"),
    ("/asgi/client-gone", "receive once the client left", "http.disconnect", lambda v: v == "http.disconnect"),
    ("/asgi/client-gone", "send once the client left", "2.4: raises an OSError subclass", lambda v: "(OSError)" in v),
    ("/asgi/body-before-start", "body before start", "an error (body needs a start first)", lambda v: v != "nothing raised"),
    ("ws/scope", "types", "websocket scope key types", lambda v: _scope_types_ok(v, True)),
    ("ws/scope", "extensions", "advertises websocket.http.response if it supports it", lambda v: "websocket.http.response" in v),
    ("ws/send-none", "send with bytes and text None", "an error (exactly one must be set)", lambda v: v != "nothing raised"),
    ("ws/disconnect", "disconnect code, reason", "2.5: the client's code and reason", lambda v: v == [4100, "client bye"]),
    ("ws/disconnect", "send after the disconnect", "2.4: raises an OSError subclass", lambda v: "(OSError)" in v),
    ("ws/disconnect", "close after the disconnect", "2.4: should raise; tolerating it is lenient", lambda v: True),
    ("wire", "/scope", "close with the app's code and reason", lambda v: v == [4000, "bye"]),
    ("wire", "/deny", "denial response: the app's status and body", lambda v: v == [418, "nope"]),
    ("wire", "/close-before-accept", "close before accept: HTTP 403", lambda v: isinstance(v, list) and v[0] == 403),
]
# fmt: on


def _asgi_value(recorded: dict[str, Any], where: str, what: str) -> Any:
    return recorded.get(where, {}).get(what, "(not recorded)")


def asgi_markdown(data: dict[str, Any]) -> list[str]:
    servers = data["servers"]
    lines = [
        "",
        "## ASGI behaviour",
        "",
        "What the app sees (recorded by `tests/apps/probe_echo.py` under `/asgi/` and on its "
        "WebSocket paths, driven by `asgi_checks`), against the HTTP & WebSocket ASGI message "
        "format, version 2.5. Values are shortened; **✗** marks a departure from the spec.",
        "",
        "| check | ASGI says | " + " | ".join(servers) + " |",
        "|---|---|" + "---|" * len(servers),
    ]
    for where, what, spec, ok in ASGI_CHECKS:
        cells = []
        for s in servers:
            value = _asgi_value(data["asgi"][s], where, what)
            text = value if isinstance(value, str) else json.dumps(value)
            if isinstance(value, dict):
                text = "as required" if ok(value) else "see JSON"
            good = ok(value) if value != "(not recorded)" else False
            cells.append(text.replace("|", "\\|")[:60] + ("" if good else " **✗**"))
        if where == "wire":
            label = f"ws `{what}` on the wire"
        else:
            label = ("ws: " if where.startswith("ws/") else "http: ") + what
        lines.append(f"| {label} | {spec} | " + " | ".join(cells) + " |")
    return lines


# -- running and reporting --------------------------------------------------------------------


def run(servers: list[str], names: list[str] | None) -> dict[str, Any]:
    cases = [c for c in CASES if names is None or c.name in names]
    results: dict[str, dict[str, Any]] = {c.name: {} for c in cases}
    versions = {}
    asgi: dict[str, Any] = {}
    for server in servers:
        versions[server] = _version(server)
        with running(server) as port:
            for c in cases:
                results[c.name][server] = exchange(port, c.parts, c.head_only).to_json()
            if names is None:
                asgi[server] = asgi_checks(port)
    return {"servers": servers, "versions": versions, "results": results, "asgi": asgi}


def _version(server: str) -> str:
    module = {"krandog": "krandog-asgi"}.get(server, server)
    from importlib.metadata import version

    return version(module)


def summarize(r: Result) -> str:
    parts = [str(s) for s in r.statuses] or ["no response"]
    text = "+".join(parts) + (" close" if r.closed else " open")
    if r.smuggled:
        text += " SMUGGLED"
    if r.tail:
        text += " +junk"
    return text


def markdown(data: dict[str, Any]) -> str:
    servers = data["servers"]
    by_name = {c.name: c for c in CASES}
    lines = [
        "# HTTP/1.1 conformance: krandog-asgi, uvicorn, hypercorn side by side",
        "",
        "Generated by `python -m tests.support.http_probe --json docs/conformance.json "
        "--markdown docs/conformance.md` from the committed run in `docs/conformance.json` "
        '(re-render it with `--from-json`; the peers come with `pip install -e ".[probe]"`). '
        "Every server runs the same plain ASGI app "
        "(`tests/apps/probe_echo.py`) with `--root-path /mnt`; uvicorn with `--http httptools "
        "--loop uvloop`. Each case is sent on a fresh connection; a cell shows the statuses "
        "received, in order, and whether the server then closed (`close`) or kept the connection "
        "open (`open`). **✗** marks a result that departs from what the RFC column says "
        "(the RFC is the judge, not the other servers). `SMUGGLED`: a request hidden behind the "
        "bad one was answered. `+junk`: bytes after the responses that are not a response.",
        "",
        "Versions: " + ", ".join(f"{s} {v}" for s, v in data["versions"].items()) + ".",
        "",
        "| case | RFC says | " + " | ".join(servers) + " |",
        "|---|---|" + "---|" * len(servers),
    ]
    fails = {s: 0 for s in servers}
    for name, per_server in data["results"].items():
        case_ = by_name[name]
        cells = []
        for s in servers:
            result = Result.from_json(per_server[s])
            good = case_.ok(result)
            fails[s] += not good
            cells.append(summarize(result) + ("" if good else " **✗**"))
        lines.append(f"| `{name}` | {case_.rfc} | " + " | ".join(cells) + " |")
    lines += ["", "Departures from the RFC: " + ", ".join(f"{s} {n}" for s, n in fails.items())]
    if data.get("asgi"):
        lines += asgi_markdown(data)
    lines += ["", "## Notes", "", *NOTES]
    return "\n".join(lines) + "\n"


# What the table cannot say by itself: our choices where the RFC allows several answers, and
# the peers' departures worth knowing about. Rendered under the table.
NOTES = [
    "- **Where the RFC allows a choice we take the strict one**: a repeated Content-Length "
    "with the same value, bare-LF line endings, obs-fold (also inside Transfer-Encoding) and "
    "framing fields in trailers are refused with 400 and a close. uvicorn does the same; "
    "hypercorn accepts each of them, which the RFC also allows.",
    "- `chunk-ext-bws` (`3 ;a=b`): RFC 9110 §5.6.3 says a recipient must strip the bad "
    "whitespace, but all three servers refuse it with 400, as llhttp and h11 do. Accepting it "
    "would also accept `3 \\r\\n`, which no grammar allows; we keep the refusal.",
    "- `non-ascii-target`: all three answer 400 (RFC 9112 §3.2 leaves serving it lenient).",
    "- `root-path`: krandog and uvicorn put `root_path` in front of `path` and `raw_path` "
    "(ASGI 2.x: `path` is the full request target); hypercorn leaves `path` as received.",
    "- uvicorn 0.55 (httptools): CL+TE is refused, but a chunked request with an unsupported "
    "coding (`gzip, chunked`) is served; `Host` is not checked at all (missing, repeated, "
    "userinfo); an HTTP/1.2 request gets 400 while HTTP/2.0 and HTTP/0.9 are served; a body "
    "the app sends with 204/304 goes on the wire and breaks the framing of the next response; "
    "a CR/LF or NUL in an app header drops the connection with no response; "
    "`Expect: 100-continue` on HTTP/1.0 gets a 100; chunk extensions and trailers of any size "
    "are accepted; a 100 KB header is accepted; a streamed response to HTTP/1.0 is sent "
    "chunked; a bad request pipelined after a good one costs the client the good one's answer; "
    "an unknown method gets 400 instead of 501; an app's repeated Content-Length goes out "
    "twice; with an absolute-form target the app still sees the old `Host` (§3.2.2: the "
    "authority replaces it).",
    "- hypercorn 0.18 (h11): CL+TE and `Transfer-Encoding` with `Content-Length` are served "
    "with the connection kept open (TE wins, §6.1 asks to close after); "
    "`chunked, identity` gets 501 instead of the required 400; an overflowing chunk size "
    "gets no answer; `chunk-size-trailing-space` (`3 \\r\\n`) is accepted; `*` is accepted "
    "for GET; CONNECT reaches the app; HTTP/2.0 and HTTP/0.9 request lines are served; "
    "`Host` with userinfo is served; a long target gets 431 instead of 414; an absolute-form "
    "target reaches the app whole as `path` (`http://example.com:8080/p`) with the old `Host`; "
    "a fragment stays in `query_string`; a 204 from the app keeps its Content-Length.",
    "- ASGI: uvicorn and hypercorn raise when the app sends after its response is complete "
    "(the spec says such messages are ignored) and do not raise when an HTTP app sends after "
    "the client left (spec 2.4: an OSError subclass). uvicorn accepts `websocket.send` with "
    "neither `bytes` nor `text`; hypercorn reports a client's close as 1006 with no reason. "
    "None of the three raises for `websocket.close` after `websocket.disconnect`: we keep that "
    "lenient on purpose, as frameworks (Channels, Starlette) close in their cleanup paths.",
    "- Found and fixed in krandog by this probe: an `HTTPStatus` (IntEnum) status was a 500 "
    "unless the same code had been sent before (`app-intenum-status`); a `websocket.close` "
    "reason over 123 bytes failed the close into a 1011 (now cut on a character boundary, as "
    "hypercorn does); an app's repeated Content-Length went out twice (`app-cl-twice-same`); "
    "a request with an Upgrade we ignore (h2c, as `curl --http2` sends on a POST) and a body "
    "was refused with 400, because llhttp skips such a body (`upgrade-h2c-with-body`: now "
    "served, the body framed by a second parser; uvicorn serves it with the body silently "
    "dropped). See the git log.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="krandog,uvicorn,hypercorn")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--from-json", type=Path, help="render a committed run; start nothing")
    args = parser.parse_args(argv)
    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        data = run(args.servers.split(","), args.case)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1, ensure_ascii=True) + "\n")
    table = markdown(data)
    if args.markdown:
        args.markdown.write_text(table)
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
