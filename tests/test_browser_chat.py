"""The chat example as a person sees it, in headless Chromium driven by Playwright.

Each tab is its own browser context (two users), on the page ``examples.chat:handler`` serves at
``/`` from a real server started through the CLI; the page's JavaScript uses the browser's own
``WebSocket``. The tests look at what is shown: computed ``display`` of the two forms, which
element has the focus, the user list, the log, the layout at 400 px, the requests the page makes,
and the page after the server restarts (backoff read from the page, timers on Playwright's fake
clock, so no test waits for a backoff in real time). Playwright drives a system Chromium
(``tests/support/browser.py`` finds it); it never downloads a browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.sync.client import connect

from tests.support.browser import CHROMIUM_ARGS, browser_skip_reason, find_chromium
from tests.support.servers import RunningServer

SKIP = browser_skip_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

APP = "examples.chat:handler"


@dataclass
class Tab:
    """One user's page plus what it did that a person would notice (or should never see)."""

    page: Any
    errors: list[str] = field(default_factory=list)  # uncaught JavaScript exceptions
    requests: list[str] = field(default_factory=list)  # paths of every HTTP request made
    bad_responses: list[str] = field(default_factory=list)  # failed requests and 4xx/5xx

    def display(self, selector: str) -> str:
        return str(self.page.eval_on_selector(selector, "e => getComputedStyle(e).display"))

    def focused(self) -> str:
        return str(self.page.evaluate("document.activeElement && document.activeElement.id"))

    def retry_ms(self) -> int:
        return int(self.page.get_attribute("#status", "data-retry-ms"))

    def join(self, name: str) -> None:
        self.page.fill("#name", name)
        self.page.press("#name", "Enter")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Callable[..., Tab]]:
    """``open_tab(server, width=..., fake_clock=...)``: a fresh context and page at ``/``."""
    contexts: list[Any] = []

    def _open(server: RunningServer, *, width: int = 900, fake_clock: bool = False) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": 700})
        contexts.append(context)
        tab = Tab(context.new_page())
        tab.page.set_default_timeout(15_000)
        tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        tab.page.on("request", lambda r: tab.requests.append(urlsplit(r.url).path))
        tab.page.on("requestfailed", lambda r: tab.bad_responses.append(f"{r.url} {r.failure}"))
        tab.page.on(
            "response",
            lambda r: r.status >= 400 and tab.bad_responses.append(f"{r.url} {r.status}"),
        )
        if fake_clock:
            # Timers run only when the test says so (run_for): backoff without real waiting.
            tab.page.clock.install(time=1_000_000)
            tab.page.clock.pause_at(1_000_001)
        tab.page.goto(server.url + "/")
        expect(tab.page.locator("#status")).to_have_text("connected: pick a name")
        return tab

    yield _open
    for context in contexts:
        context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def joined_pair(serve: Callable[..., RunningServer], open_tab: Callable[..., Tab], **kw: Any):
    server = serve(APP)
    alice, bob = open_tab(server, **kw), open_tab(server, **kw)
    for tab, name in ((alice, "alice"), (bob, "bob")):
        tab.join(name)
        expect(tab.page.locator("#status")).to_have_text(f"joined as {name}")
    for tab in (alice, bob):
        expect(tab.page.locator("#users li")).to_have_text(["alice", "bob"])
    return server, alice, bob


def test_join_form_before_joining_message_form_after_with_the_focus_following(
    serve, open_tab
) -> None:
    tab = open_tab(serve(APP))
    assert tab.display("#join-form") == "flex"
    assert tab.display("#chat-form") == "none"
    assert tab.focused() == "name"  # type a name right away
    expect(tab.page.locator("#join")).to_be_enabled()

    tab.join("alice")
    expect(tab.page.locator("#status")).to_have_text("joined as alice")
    assert tab.display("#join-form") == "none"
    assert tab.display("#chat-form") == "flex"
    expect(tab.page.locator("#text")).to_be_focused()
    assert tab.focused() == "text"
    expect(tab.page.locator("#users li")).to_have_text(["alice"])
    expect(tab.page.locator("#users li.me")).to_have_text("alice")
    assert tab.errors == []


def test_two_tabs_see_each_other_and_messages_both_ways(serve, open_tab) -> None:
    _, alice, bob = joined_pair(serve, open_tab)
    expect(alice.page.locator("#log .notice")).to_have_text(["bob joined"])
    expect(bob.page.locator("#log .notice")).to_have_count(0)  # no notice for your own join
    expect(alice.page.locator("#users-title")).to_have_text("Online (2)")
    expect(alice.page.locator("#users li.me")).to_have_text("alice")
    expect(bob.page.locator("#users li.me")).to_have_text("bob")

    bob.page.fill("#text", "hello from bob <b>not bold</b>")
    bob.page.press("#text", "Enter")
    for tab in (alice, bob):  # rendered as text, not HTML
        expect(tab.page.locator("#log .message").last).to_have_text(
            "bob:hello from bob <b>not bold</b>"
        )
    assert alice.page.locator("#log b", has_text="not bold").count() == 0
    expect(bob.page.locator("#text")).to_have_value("")

    alice.page.fill("#text", "hi bob")
    alice.page.click("#send")
    expect(bob.page.locator("#log .message").last).to_have_text("alice:hi bob")
    expect(alice.page.locator("#log .message").last).to_have_text("alice:hi bob")

    bob.page.close()
    expect(alice.page.locator("#log .notice").last).to_have_text("bob left")
    expect(alice.page.locator("#users li")).to_have_text(["alice"])
    for tab in (alice, bob):
        assert tab.errors == []
        assert tab.bad_responses == []
        assert tab.requests == ["/"]  # no favicon.ico, nothing else: the page is self-contained
    # Headless Chromium asks for no icon anyway; a windowed one would ask for /favicon.ico
    # (a 404 in the server log) unless the page names an icon that needs no request.
    assert alice.page.eval_on_selector("link[rel=icon]", "e => e.href") == "data:,"


def test_a_taken_name_is_refused_and_the_join_form_stays(serve, open_tab) -> None:
    server = serve(APP)
    alice, bob = open_tab(server), open_tab(server)
    alice.join("alice")
    expect(alice.page.locator("#status")).to_have_text("joined as alice")

    bob.join("alice")
    expect(bob.page.locator("#log .error")).to_have_text(["that name is taken"])
    expect(bob.page.locator("#status")).to_have_text("that name is taken: pick a name")
    assert bob.display("#join-form") == "flex"
    assert bob.display("#chat-form") == "none"
    expect(bob.page.locator("#name")).to_be_focused()

    bob.join("bob")
    expect(bob.page.locator("#status")).to_have_text("joined as bob")
    expect(alice.page.locator("#users li")).to_have_text(["alice", "bob"])
    assert alice.errors == bob.errors == []


def test_usable_at_400px_without_horizontal_overflow(serve, open_tab) -> None:
    _, alice, bob = joined_pair(serve, open_tab, width=400)
    word = "x" * 300  # one long word must wrap, not widen the page
    alice.page.fill("#text", word)
    alice.page.press("#text", "Enter")
    expect(bob.page.locator("#log .message").last).to_have_text("alice:" + word)
    for tab in (alice, bob):
        overflow = tab.page.evaluate(
            """() => [document.documentElement, document.body, document.getElementById('log')]
                .map((e) => [e.scrollWidth, e.clientWidth])"""
        )
        for scroll_width, client_width in overflow:
            assert scroll_width <= client_width, overflow
        for selector in ("#chat-form", "#send", "#log", "#users"):
            box = tab.page.locator(selector).bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 400, (selector, box)
    assert alice.errors == bob.errors == []


def advance_to_next_attempt(tab: Tab) -> None:
    """Run the page's fake clock up to its pending reconnect timer, and no further."""
    tab.page.clock.run_for(tab.retry_ms())


def test_server_restart_reconnects_with_backoff_and_rejoins(serve, open_tab) -> None:
    server, alice, bob = joined_pair(serve, open_tab, fake_clock=True)
    bob.page.fill("#text", "a draft")  # half typed when the server goes away: kept
    server.stop()  # SIGTERM: the server closes every WebSocket with 1012

    status = alice.page.locator("#status")
    for tab in (alice, bob):
        expect(tab.page.locator("#status")).to_have_text(
            "disconnected (1012 server restarting): reconnecting in 1 s…"
        )
        assert 500 <= tab.retry_ms() <= 1000  # 1 s with jitter
        assert tab.display("#chat-form") == "flex"  # the message form stays, disabled
        expect(tab.page.locator("#text")).to_be_disabled()
        expect(tab.page.locator("#log .notice").last).to_have_text("disconnected")

    # While the server is down every attempt fails and the wait doubles (with jitter).
    for ceiling in (2000, 4000, 8000):
        before = alice.retry_ms()
        advance_to_next_attempt(alice)
        expect(status).not_to_have_attribute("data-retry-ms", str(before))
        expect(status).to_have_text(
            f"cannot reach the server: reconnecting in {-(-alice.retry_ms() // 1000)} s…"
        )
        assert ceiling // 2 <= alice.retry_ms() <= ceiling

    serve(APP, "--port", str(server.port))  # the same address again
    for tab in (alice, bob):
        advance_to_next_attempt(tab)
        expect(tab.page.locator("#status")).to_have_text(
            f"reconnected: joined as {'alice' if tab is alice else 'bob'}"
        )
        expect(tab.page.locator("#log .notice", has_text="reconnected")).to_have_count(1)
    for tab in (alice, bob):
        expect(tab.page.locator("#users li")).to_have_text(["alice", "bob"])
        expect(tab.page.locator("#text")).to_be_enabled()
        expect(tab.page.locator("#text")).to_be_focused()
    expect(bob.page.locator("#text")).to_have_value("a draft")

    alice.page.fill("#text", "still here?")
    alice.page.press("#text", "Enter")
    expect(bob.page.locator("#log .message").last).to_have_text("alice:still here?")
    bob.page.fill("#text", "yes")
    bob.page.press("#text", "Enter")
    expect(alice.page.locator("#log .message").last).to_have_text("bob:yes")
    assert alice.errors == bob.errors == []


def test_rejoin_under_a_name_taken_meanwhile_hands_the_choice_back(serve, open_tab) -> None:
    server = serve(APP)
    alice = open_tab(server, fake_clock=True)
    alice.join("alice")
    expect(alice.page.locator("#status")).to_have_text("joined as alice")
    server.stop()
    expect(alice.page.locator("#status")).to_contain_text("reconnecting in 1 s")

    restarted = serve(APP, "--port", str(server.port))

    # Another client takes the name before the page's reconnect timer fires.
    with connect(restarted.ws_url + "/ws") as impostor:
        impostor.send(json.dumps({"type": "join", "name": "alice"}))
        assert json.loads(impostor.recv(timeout=5))["type"] == "welcome"
        advance_to_next_attempt(alice)
        expect(alice.page.locator("#status")).to_have_text(
            "could not rejoin: that name is taken: pick a name"
        )
        assert alice.display("#join-form") == "flex"
        assert alice.display("#chat-form") == "none"
        expect(alice.page.locator("#name")).to_have_value("alice")
        expect(alice.page.locator("#name")).to_be_focused()

        alice.join("alice2")
        expect(alice.page.locator("#status")).to_have_text("joined as alice2")
        expect(alice.page.locator("#users li")).to_have_text(["alice", "alice2"])
    assert alice.errors == []
