"""A pytest plugin that adds krandog-asgi to the servers of Falcon's own ASGI server tests
(``tests/asgi/test_asgi_servers.py`` in Falcon's source distribution), without editing them.

That module parametrizes a fixture ``asgi_server`` over daphne, granian, hypercorn and uvicorn
and maps each name to a function that starts that server in a subprocess. Before pytest
collects the module, this plugin imports it and replaces those two fixtures, so the choice
given with ``--falcon-servers`` (``krandog`` by default; ``krandog,uvicorn`` to compare) is
what runs. Run it through ``run_falcon_server_tests.py`` beside it, which fetches the sources.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MODULE = "asgi.test_asgi_servers"  # the name pytest gives it: tests/ has no __init__.py


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--falcon-servers",
        default="krandog",
        help="comma-separated servers to run Falcon's server tests against (krandog, uvicorn, ...)",
    )


def krandog_factory(module_dir: str) -> Callable[[str, int], subprocess.Popen[bytes]]:
    def start(host: str, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            (
                sys.executable,
                "-m",
                "krandog_asgi",
                "--host",
                host,
                "--port",
                str(port),
                "_asgi_test_app:application",
            ),
            cwd=module_dir,
        )

    return start


def pytest_configure(config: pytest.Config) -> None:
    tests_dir = Path(str(config.rootpath)) / "tests"
    if not (tests_dir / "asgi" / "test_asgi_servers.py").exists():
        raise pytest.UsageError(f"run from the root of Falcon's sources (no {tests_dir}/asgi)")
    sys.path.insert(0, str(tests_dir))
    module: Any = importlib.import_module(MODULE)
    names = [n.strip() for n in config.getoption("--falcon-servers").split(",") if n.strip()]
    factories: dict[str, Callable[..., Any]] = {
        "daphne": module._daphne_factory,
        "granian": module._granian_factory,
        "hypercorn": module._hypercorn_factory,
        "uvicorn": module._uvicorn_factory,
        "krandog": krandog_factory(module._MODULE_DIR),
    }
    unknown = set(names) - set(factories)
    if unknown:
        raise pytest.UsageError(f"unknown servers {sorted(unknown)}; known: {sorted(factories)}")

    @pytest.fixture(params=names)
    def asgi_server(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def process_factory(asgi_server: str) -> Callable[..., Any]:
        if asgi_server != "krandog":
            pytest.importorskip(asgi_server)
        return factories[asgi_server]

    module.asgi_server = asgi_server
    module.process_factory = process_factory
