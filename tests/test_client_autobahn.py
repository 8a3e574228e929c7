"""The Autobahn|Testsuite fuzzingserver driving our client (the ``--fast`` selection).

Needs ``../shared/autobahn`` beside the repository; skips with the reason when it is absent. The
suite's virtualenv is built on first use in ``$AUTOBAHN_VENV`` (default
``~/.cache/krandog-asgi/autobahn-venv``). The echo client is ``tests/autobahn_client.py``; the
full 517-case run (about 20 minutes) is recorded in bench/client/README.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_autobahn import AUTOBAHN, autobahn_env

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    not (AUTOBAHN / "run-client-suite.sh").exists(),
    reason=f"{AUTOBAHN} not found (the Autobahn harness lives in ../shared beside the repository)",
)
def test_autobahn_client_fast(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(AUTOBAHN / "run-client-suite.sh"),
            "--fast",
            "--agent", "krandog-client",
            "--out", str(tmp_path / "report"),
            "--", sys.executable, str(HERE / "autobahn_client.py"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=autobahn_env(),
    )  # fmt: skip
    summary = re.search(r"^autobahn: OK=.*$", result.stdout, re.M)
    assert summary, result.stdout + result.stderr
    line = summary.group(0)
    counts = {name: int(n) for name, n in re.findall(r"([A-Za-z-]+)=(\d+)", line)}
    assert counts["FAILED"] == 0, result.stdout[-3000:]
    assert counts["UNIMPLEMENTED"] == 0, line
    assert counts["NON-STRICT"] == 0, line
    assert counts["INFORMATIONAL"] == 3, line  # 7.1.6, 7.13.1, 7.13.2 never get another verdict
    assert counts["OK"] + counts["INFORMATIONAL"] == counts["total"] > 250, line
    assert result.returncode == 0, result.stdout[-2000:]
