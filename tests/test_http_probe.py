"""Every case of the differential probe (``tests/support/http_probe.py``) against our server:
each must meet what the RFC column of ``docs/conformance.md`` says. The side-by-side run with
uvicorn and hypercorn is the probe's own command; this test holds our column to the RFC."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support import http_probe
from tests.support.servers import RunningServer, start_server

CASES = {c.name: c for c in http_probe.CASES}


@pytest.fixture(scope="module")
def probe_server() -> Iterator[RunningServer]:
    server = start_server("probe_echo:app", "--no-access-log", "--root-path", http_probe.ROOT_PATH)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=c.known)) if c.known else n
        for n, c in CASES.items()
    ],
)
def test_probe_case_meets_the_rfc(probe_server: RunningServer, name: str) -> None:
    case = CASES[name]
    result = http_probe.exchange(probe_server.port, case.parts, case.head_only)
    assert case.ok(result), f"{case.rfc}: got {http_probe.summarize(result)}: {result.to_json()}"


def test_asgi_behaviour_meets_the_spec(probe_server: RunningServer) -> None:
    """The ASGI table of docs/conformance.md for our server: every check holds."""
    recorded = http_probe.asgi_checks(probe_server.port)
    failed = [
        (where, what, http_probe._asgi_value(recorded, where, what))
        for where, what, _, ok in http_probe.ASGI_CHECKS
        if not ok(http_probe._asgi_value(recorded, where, what))
    ]
    assert not failed


def test_probe_checks_can_fail() -> None:
    """The checks are not vacuous: a smuggled answer, an open connection or a wrong status fail."""
    refused = http_probe.Result(
        [{"version": "1.1", "status": 400, "reason": "", "headers": [], "body": ""}], closed=True
    )
    assert CASES["cl-and-te"].ok(refused)
    assert not CASES["cl-and-te"].ok(http_probe.Result(refused.responses, closed=False))
    smuggled = http_probe.Result(
        [*refused.responses, {**refused.responses[0], "status": 200, "body": "/smuggled"}], True
    )
    assert not CASES["cl-and-te"].ok(smuggled)
    checks = {(where, what): ok for where, what, _, ok in http_probe.ASGI_CHECKS}
    assert not checks["/asgi/client-gone", "send once the client left"]("nothing raised")
    assert not checks["ws/disconnect", "disconnect code, reason"]([1006, None])
    assert not CASES["missing-host"].ok(
        http_probe.Result([{**refused.responses[0], "status": 200}], closed=True)
    )


def test_committed_table_renders_from_the_committed_run() -> None:
    """docs/conformance.md is what the probe renders from docs/conformance.json."""
    root = http_probe.ROOT
    data = (root / "docs" / "conformance.json").read_text()
    assert http_probe.markdown(json.loads(data)) == (root / "docs" / "conformance.md").read_text()
