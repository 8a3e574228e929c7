"""Regenerate the chat screenshots in this folder: chat-desktop.png and chat-400px.png.

    python docs/images/make_screenshots.py        (from the repository root, after
                                                   pip install -e ".[test]")

Starts ``krandog-asgi examples.chat:handler`` on a free port, opens tabs in headless Chromium
(the same one the browser tests use: ``$CHROMIUM`` or ``chromium`` on PATH; nothing is
downloaded), lets three people join and talk, and saves what two of them see: one on a desktop
window, one on a 400 px wide phone-sized viewport.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import (  # noqa: E402  (the repository root is on sys.path now)
    CHROMIUM_ARGS,
    browser_skip_reason,
    find_chromium,
)

RUNNING = re.compile(r"running on (http://\S+)")
CONVERSATION = [
    ("alice", "hi all, the server restarted a minute ago: did your tab reconnect?"),
    ("bob", "yes, it said “reconnecting in 1 s…” and joined me again as bob"),
    ("carol", "same here, on my phone"),
    ("alice", "https://example.com/a/very/long/link/that/has/no/spaces/and/must/wrap/" + "x" * 40),
]


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "krandog_asgi", "examples.chat:handler", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = RUNNING.search(line)
        if match:
            return proc, match.group(1)
    raise SystemExit("the chat server did not start:\n" + (proc.stdout.read() or ""))


def main() -> None:
    reason = browser_skip_reason()
    if reason:
        raise SystemExit(reason)
    from playwright.sync_api import expect, sync_playwright

    proc, url = start_server()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS
            )
            sizes = {"alice": (960, 560), "bob": (960, 560), "carol": (400, 720)}
            tabs = {}
            for name, (width, height) in sizes.items():
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                page.goto(url + "/")
                expect(page.locator("#status")).to_have_text("connected: pick a name")
                page.fill("#name", name)
                page.press("#name", "Enter")
                expect(page.locator("#status")).to_have_text(f"joined as {name}")
                tabs[name] = page
            for name, text in CONVERSATION:
                tabs[name].fill("#text", text)
                tabs[name].press("#text", "Enter")
                for page in tabs.values():
                    expect(page.locator("#log .message").last).to_have_text(f"{name}:{text}")
            tabs["bob"].fill("#text", "typing a reply…")  # a half-typed message, as in real use
            tabs["bob"].screenshot(path=str(HERE / "chat-desktop.png"))
            tabs["carol"].screenshot(path=str(HERE / "chat-400px.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    print("wrote", HERE / "chat-desktop.png", "and", HERE / "chat-400px.png")


if __name__ == "__main__":
    main()
