"""The chat in real browsers across two server processes sharing one Redis: alice's page is
served by one process, bob's by the other, and each sees the other's join, messages and leave
(a system Chromium driven by Playwright, as in tests/test_browser_chat.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.pubsub.redis_server import RedisServer
from tests.support.browser import CHROMIUM_ARGS, browser_skip_reason, find_chromium
from tests.support.servers import RunningServer

SKIP = browser_skip_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


def test_chat_between_browsers_on_two_processes(
    serve: Callable[..., RunningServer], redis: RedisServer
) -> None:
    from playwright.sync_api import expect, sync_playwright

    servers = [serve("examples.chat:handler", "--broadcast-url", redis.url) for _ in range(2)]
    for server in servers:
        assert server.wait_for_log("Connected to Redis", 10), server.log

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            pages: dict[str, tuple[Any, list[str]]] = {}
            for name, server in zip(("alice", "bob"), servers, strict=True):
                page = browser.new_context().new_page()
                page.set_default_timeout(15_000)
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(server.url + "/")
                expect(page.locator("#status")).to_have_text("connected: pick a name")
                page.fill("#name", name)
                page.press("#name", "Enter")
                expect(page.locator("#status")).to_have_text(f"joined as {name}")
                pages[name] = (page, errors)
            (alice, alice_errors), (bob, bob_errors) = pages["alice"], pages["bob"]

            expect(alice.locator("#log .notice")).to_have_text(["bob joined"])
            for page in (alice, bob):
                expect(page.locator("#users li")).to_have_text(["alice", "bob"])

            bob.fill("#text", "hello across processes")
            bob.press("#text", "Enter")
            expect(alice.locator("#log .message").last).to_have_text("bob:hello across processes")
            alice.fill("#text", "hi bob")
            alice.press("#text", "Enter")
            expect(bob.locator("#log .message").last).to_have_text("alice:hi bob")

            bob.close()
            expect(alice.locator("#log .notice").last).to_have_text("bob left")
            expect(alice.locator("#users li")).to_have_text(["alice"])
            assert alice_errors == []
            assert bob_errors == []
        finally:
            browser.close()
