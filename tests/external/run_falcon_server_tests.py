"""Run Falcon's own ASGI server tests (``tests/asgi/test_asgi_servers.py`` of its source
distribution) against krandog-asgi, and optionally against other servers in the same run.

    python tests/external/run_falcon_server_tests.py                      # krandog only
    python tests/external/run_falcon_server_tests.py --servers krandog,uvicorn -- -x

The sdist of the installed Falcon version is fetched with ``pip download`` (cached under
``--cache``); ``falcon_shim.py`` adds our server to the module's server fixture. Needs
``requests``, ``httpx`` and ``websockets`` (Falcon's tests skip without them, so they are
checked first) and exits with pytest's status.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEEDED = ("falcon", "requests", "httpx", "websockets", "pytest")


def falcon_sources(cache: Path) -> Path:
    """The unpacked sdist of the installed Falcon version, downloaded on first use."""
    version = importlib.metadata.version("falcon")
    root = cache / f"falcon-{version}"
    if (root / "tests" / "asgi" / "test_asgi_servers.py").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--dest", str(cache), f"falcon=={version}"],
        check=True,
    )  # fmt: skip
    with tarfile.open(cache / f"falcon-{version}.tar.gz") as archive:
        archive.extractall(cache, filter="data")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="krandog", help="comma-separated (default: krandog)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "krandog-falcon-sources",
        help="where the sdist is downloaded and unpacked",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        parser.error(f"install {' '.join(missing)} first (Falcon's tests skip without them)")
    root = falcon_sources(args.cache)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    command = [
        sys.executable, "-m", "pytest", "-p", "falcon_shim", "-p", "no:cacheprovider",
        f"--falcon-servers={args.servers}", "-rfE", "tests/asgi/test_asgi_servers.py",
        *args.pytest_args,
    ]  # fmt: skip
    return subprocess.run(command, cwd=root, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
