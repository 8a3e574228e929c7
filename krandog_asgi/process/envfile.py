"""``--env-file``: ``KEY=VALUE`` lines loaded into ``os.environ`` before the app is imported.

Used by the CLI (before it reads defaults such as ``$WEB_CONCURRENCY``), by ``run()`` and by
each worker process.
"""

from __future__ import annotations

import os
import sys

__all__ = ["apply_env_file", "load_env_file"]


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
    """``load_env_file`` for the command line: False, with one line on stderr, if unreadable."""
    try:
        load_env_file(path)
    except OSError as exc:
        print(f"Error: cannot read --env-file {path}: {exc.strerror}", file=sys.stderr)
        return False
    return True
