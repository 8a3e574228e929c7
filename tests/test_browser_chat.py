"""The chat example in a real browser: Debian's headless Chromium, driven by Playwright.

Two pages (separate browser contexts, like two users) open the chat served at ``/``; its
JavaScript uses the browser's own ``WebSocket``. Both join, a message typed in one appears in
the other, and closing one shows a leave notice in the other. Playwright drives
``/usr/bin/chromium`` (``.ci/run`` installs it); it never downloads a browser.
"""

from __future__ import annotations

import os

import pytest

from tests.support.servers import RunningServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)",
    ),
]


def test_chat_between_two_browser_pages(serve) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    expect = sync_api.expect
    server: RunningServer = serve("examples.chat:handler")

    with sync_api.sync_playwright() as playwright:
        # headless, with a fresh temporary profile per launch
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            pages = {}
            for name in ("alice", "bob"):
                page = browser.new_context().new_page()
                page.set_default_timeout(15_000)
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(server.url + "/")
                expect(page.locator("#status")).to_have_text("connected: pick a name")
                page.fill("#name", name)
                page.click("#join")
                expect(page.locator("#status")).to_have_text(f"joined as {name}")
                pages[name] = (page, errors)
            alice, alice_errors = pages["alice"]
            bob, bob_errors = pages["bob"]

            expect(alice.locator("#log")).to_contain_text("bob joined")
            expect(alice.locator("#users")).to_have_text("Online: alice, bob")
            expect(bob.locator("#users")).to_have_text("Online: alice, bob")

            bob.fill("#text", "hello from bob <b>not bold</b>")
            bob.press("#text", "Enter")
            expect(alice.locator("#log .message").last).to_have_text(
                "bob:hello from bob <b>not bold</b>"  # rendered as text, not HTML
            )
            expect(bob.locator("#log .message").last).to_have_text(
                "bob:hello from bob <b>not bold</b>"
            )
            assert alice.locator("#log b", has_text="not bold").count() == 0

            alice.fill("#text", "hi bob")
            alice.click("#send")
            expect(bob.locator("#log .message").last).to_have_text("alice:hi bob")

            bob.close()
            expect(alice.locator("#log .notice").last).to_have_text("bob left")
            expect(alice.locator("#users")).to_have_text("Online: alice")
            assert alice_errors == []
            assert bob_errors == []
        finally:
            browser.close()
