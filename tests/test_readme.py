"""The README stays true: its two echo snippets run as written, its test command is what
``.ci/run`` runs (after installing Chromium and redis-server), a missing browser is a skip the
summary names, and the docs point a user only at files in the repository."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import ROOT, start_server

SNIPPETS = re.findall(
    r"```python\n(# (\w+)\.py: krandog-asgi \2:(\w+)\n.*?)```",
    (ROOT / "README.md").read_text(),
    re.S,
)


def test_readme_has_both_snippets() -> None:
    assert [name for _, name, _ in SNIPPETS[:2]] == ["echo", "echo_asgi"]


@pytest.mark.parametrize(("code", "module", "attr"), SNIPPETS[:2], ids=["krandog", "asgi"])
def test_readme_echo_snippet(code: str, module: str, attr: str, tmp_path: Path) -> None:
    (tmp_path / f"{module}.py").write_text(code)
    server = start_server(f"{module}:{attr}", "--app-dir", str(tmp_path))
    try:
        response = httpx.get(server.url + "/")
        assert response.status_code == 200
        assert response.text == "HTTP Server with WebSocket support"

        async def main() -> None:
            async with websockets.connect(server.ws_url + "/") as ws:
                for word in ("hello", "world"):
                    await ws.send(word)
                    assert await ws.recv() == "Echo: " + word

        asyncio.run(main())
    finally:
        server.stop()


# --- the test command, .ci/run, and docs that a user can follow from the repository alone ---

README = (ROOT / "README.md").read_text()
CI_RUN = ROOT / ".ci" / "run"
TEST_COMMAND = re.search(r"\*\*Run the test suite\*\*.*?```sh\n(.+?)\n```", README, re.S)
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    assert TEST_COMMAND is not None, "README lost its **Run the test suite** block"
    command = TEST_COMMAND.group(1)
    assert "\n" not in command  # one line to copy
    assert command.endswith("python -m pytest")
    assert command in CI_RUN.read_text().splitlines()


def fake_tools(bin_dir: Path, *present: str) -> Path:
    """A PATH with only what .ci/run needs: stubs that log their arguments, plus ``present``
    (system tools that count as installed)."""
    log = bin_dir / "calls.log"
    bin_dir.mkdir()
    for tool in ("dirname", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    logged = f'#!/bin/sh\necho "${{0##*/}} $*" >> {log}\n'
    tools = {
        "apt-get": logged,
        "sudo": logged + '"$@"\n',
        # `python3 -c "import ensurepip"` succeeds; `python3 -m venv` is logged and stops the
        # README command there (this test checks what .ci/run runs, not the suite itself).
        "python3": logged.replace("\n", '\n[ "$1" = -c ] && exit 0\n', 1) + "exit 1\n",
        **{name: "#!/bin/sh\nexit 0\n" for name in present},
    }
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return log


def run_ci(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(CI_RUN)],
        env={"PATH": str(bin_dir), "HOME": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_ci_installs_chromium_and_redis_when_missing_then_runs_the_readme_command(
    tmp_path: Path,
) -> None:
    log = fake_tools(tmp_path / "bin")
    result = run_ci(tmp_path / "bin")
    assert result.returncode != 0  # our python3 stub stops at `python3 -m venv`
    calls = log.read_text().splitlines()
    apt = [call for call in calls if call.startswith("apt-get")]
    assert apt[0] == "apt-get update -qq"
    install = apt[1].split()
    assert install[:2] == ["apt-get", "install"]
    assert {"chromium", "redis-server"} <= set(install)
    assert calls[-1] == "python3 -m venv .venv"  # then the README's command, from its start


def test_ci_installs_nothing_when_chromium_and_redis_are_there(tmp_path: Path) -> None:
    log = fake_tools(tmp_path / "bin", "chromium", "redis-server")
    run_ci(tmp_path / "bin")
    calls = log.read_text().splitlines()
    assert not [call for call in calls if call.startswith(("apt-get", "sudo"))]
    assert calls == ["python3 -m venv .venv"]


def test_a_missing_chromium_is_a_skip_named_in_the_summary(tmp_path: Path) -> None:
    """On a machine without Chromium the browser tests do not vanish: pytest's summary (``-ra``
    from pyproject's addopts) lists them as skipped, with what to install."""
    env = {k: v for k, v in os.environ.items() if k != "CHROMIUM"}
    env["PATH"] = str(tmp_path)  # no chromium, chromium-browser or google-chrome on it
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_browser_chat.py", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("short test summary info", 1)[1]
    assert re.search(
        r"SKIPPED \[\d+\] tests/test_browser_chat\.py.*: browser tests skipped: no Chromium found"
        r".*apt-get install chromium",
        summary,
    ), summary
    assert re.search(r"\d+ skipped", summary.splitlines()[-1])


def assert_links_resolve(doc: Path) -> None:
    """Every relative link (markdown or ``src=``) of ``doc`` names a file of the repository."""
    for target in re.findall(r"\]\(([^)#\s]+)|src=\"([^\"]+)\"", doc.read_text()):
        path = next(t for t in target if t)
        if re.match(r"[a-z]+:", path):
            continue  # a URL
        assert (doc.parent / path).exists(), f"{doc.name} links to {path}, not in the repository"


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_point_only_inside_the_repository(doc: Path) -> None:
    assert not re.findall(r"\.\./shared|/work/\w+", doc.read_text())
    assert_links_resolve(doc)


DEVELOPER_DOCS = sorted([*(ROOT / "bench").rglob("README.md"), *(ROOT / "fuzz").glob("*.md")])


@pytest.mark.parametrize("doc", DEVELOPER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_and_fuzz_docs_links_resolve(doc: Path) -> None:
    assert_links_resolve(doc)
