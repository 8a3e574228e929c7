"""Shared fixtures. Servers run in subprocesses (``tests/support/servers.py``); the fixtures
here start them and stop every one a test started when it ends.

- ``serve(app, *flags)``: a fresh server per call, stopped after the test.
- ``http_app``: one ``http_app:app`` server for the whole session, the app most HTTP tests use.
- ``certs``: a test CA and a server certificate for 127.0.0.1, localhost and ::1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.certs import Certificates, make_certificates
from tests.support.servers import RunningServer, module_server, start_server


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def _serve(app: str, *args: str, **kwargs: object) -> RunningServer:
        server = start_server(app, *args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield _serve
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def http_app() -> Iterator[RunningServer]:
    """The HTTP test app with default options, shared by every test that only talks to it."""
    with module_server("http_app:app") as server:
        yield server


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))
