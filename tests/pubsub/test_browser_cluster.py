"""The chat in real browsers across two server processes sharing one Redis: alice's page is
served by one process, bob's by the other, and each sees the other's join, messages and leave
(headless Debian Chromium via Playwright, as in tests/test_browser_chat.py)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.pubsub.redis_server import RedisServer
from tests.support.servers import RunningServer
from tests.test_browser_chat import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)",
    ),
]


def test_chat_between_browsers_on_two_processes(
    serve: Callable[..., RunningServer], redis: RedisServer
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    expect = sync_api.expect
    servers = [serve("examples.chat:handler", "--broadcast-url", redis.url) for _ in range(2)]
    for server in servers:
        assert server.wait_for_log("Connected to Redis", 10), server.log

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            pages = {}
            for name, server in zip(("alice", "bob"), servers, strict=True):
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

            bob.fill("#text", "hello across processes")
            bob.press("#text", "Enter")
            expect(alice.locator("#log .message").last).to_have_text("bob:hello across processes")
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
