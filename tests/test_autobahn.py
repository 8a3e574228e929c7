"""The Autobahn|Testsuite fuzzingclient against our server (the ``--fast`` selection).

Needs ``../shared/autobahn`` beside the repository (the Python 3 port of the suite); skips with
the reason when it is absent. The suite's virtualenv is built on first use in
``$AUTOBAHN_VENV`` (default ``~/.cache/krandog-asgi/autobahn-venv``). The full 517-case run
(about 20 minutes) is documented in bench/README.md and recorded in the issue notes.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import ROOT

AUTOBAHN = ROOT.parent / "shared" / "autobahn"
pytestmark = pytest.mark.slow


def autobahn_env() -> dict[str, str]:
    venv = os.environ.get("AUTOBAHN_VENV") or str(Path.home() / ".cache/krandog-asgi/autobahn-venv")
    return dict(os.environ, AUTOBAHN_VENV=venv)


@pytest.mark.skipif(not (AUTOBAHN / "run-server-suite.sh").exists(), reason=f"{AUTOBAHN} not found")
def test_autobahn_server_fast(serve, tmp_path: Path) -> None:
    server = serve(
        "asgi_echo_app:app",
        "--ws-max-size",
        "33554432",
        "--no-access-log",
        "--app-dir",
        str(ROOT / "examples"),
    )
    result = subprocess.run(
        [
            str(AUTOBAHN / "run-server-suite.sh"),
            server.ws_url,
            "--fast",
            "--agent",
            "krandog",
            "--out",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=autobahn_env(),
    )
    summary = re.search(r"^autobahn: OK=.*$", result.stdout, re.M)
    assert summary, result.stdout + result.stderr
    line = summary.group(0)
    counts = dict(re.findall(r"([A-Za-z-]+)=(\d+)", line))
    assert counts["FAILED"] == "0", line
    assert counts["UNIMPLEMENTED"] == "0", line
    assert counts["NON-STRICT"] == "0", line
    assert int(counts["OK"]) + int(counts["INFORMATIONAL"]) == int(counts["total"]), line
    assert result.returncode == 0, result.stdout[-2000:]
