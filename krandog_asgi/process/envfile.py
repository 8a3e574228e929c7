"""``--env-file``: ``KEY=VALUE`` lines loaded into ``os.environ`` before the app is imported.

Loaded once per process: by the CLI (before it reads defaults such as ``$WEB_CONCURRENCY``) or
by ``run()``; worker processes inherit the variables from their parent.
"""

from __future__ import annotations

import os
import sys

__all__ = ["apply_env_file", "load_env_file"]

_LOADED: set[str] = set()  # absolute paths already applied in this process


def load_env_file(path: str) -> None:
    """Load ``KEY=VALUE`` lines into ``os.environ`` (``export``, quotes and comments allowed).

    Variables already set in the environment win, as with docker and python-dotenv.
    """
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[7:].lstrip()
            key, sep, value = line.partition("=")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
            elif len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].rstrip()
            os.environ.setdefault(key, value)


def apply_env_file(path: str) -> bool:
    """``load_env_file`` for the command line: False, with one line on stderr, if unreadable.

    A file already applied in this process is not read again (the CLI loads it before
    reading ``$WEB_CONCURRENCY``, then hands the same option to ``run()``)."""
    key = os.path.abspath(path)
    if key in _LOADED:
        return True
    try:
        load_env_file(path)
    except OSError as exc:
        print(f"Error: cannot read --env-file {path}: {exc.strerror}", file=sys.stderr)
        return False
    _LOADED.add(key)
    return True
