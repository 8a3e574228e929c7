"""Find a Chromium for the browser tests and say clearly why they skip when there is none.

Playwright drives a system Chromium through ``executable_path`` and never downloads one. The
search order: ``$CHROMIUM`` (a path), then ``chromium``, ``chromium-browser``, ``google-chrome``
and ``google-chrome-stable`` on ``PATH`` (Debian's package is ``/usr/bin/chromium``; ``.ci/run``
installs it). ``browser_skip_reason()`` is the one-line reason pytest prints with ``-ra``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Quiet and self-contained: no sandbox (containers, root), no GPU, no calls home, no updates.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """The Chromium to drive, or None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_skip_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if importlib.util.find_spec("playwright") is None:
        return 'browser tests skipped: the playwright package is missing (pip install -e ".[test]")'
    if os.environ.get("CHROMIUM") and find_chromium() is None:
        return f"browser tests skipped: $CHROMIUM={os.environ['CHROMIUM']} is not an executable"
    if find_chromium() is None:
        return (
            "browser tests skipped: no Chromium found (looked for $CHROMIUM, "
            + ", ".join(CHROMIUM_NAMES)
            + "); install one, e.g. `sudo apt-get install chromium` (.ci/run does)"
        )
    return None
