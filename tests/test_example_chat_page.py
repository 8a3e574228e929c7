"""The chat example's page and its answers to bad input, without a browser (those are in
tests/test_browser_chat.py): the page is examples/chat.html as written, and the hint the server
sends for input that is not JSON is itself JSON a client can send."""

from __future__ import annotations

import json

import httpx
from websockets.sync.client import connect

from tests.support.servers import ROOT, RunningServer

APP = "examples.chat:handler"


def test_the_page_is_chat_html_with_hidden_that_hides(serve) -> None:
    server: RunningServer = serve(APP)
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == (ROOT / "examples" / "chat.html").read_text(encoding="utf-8")
    # `form { display: flex }` would beat the hidden attribute without this rule.
    assert "[hidden] { display: none !important; }" in response.text
    assert '<link rel="icon" href="data:,">' in response.text


def test_bad_input_gets_an_error_whose_example_is_valid_json(serve) -> None:
    server: RunningServer = serve(APP)
    with connect(server.ws_url + "/ws") as ws:
        for bad in ("not json", "[1, 2]", '"just a string"', "null", '{"no": "type"}', b"\xff"):
            ws.send(bad)
            reply = json.loads(ws.recv(timeout=5))
            assert reply["type"] == "error"
            prefix, _, example = reply["error"].partition("send JSON like ")
            assert prefix == ""
            assert json.loads(example) == {"type": "message", "text": "hello"}
        # The example is a real message: sent before joining, it gets the protocol's answer.
        ws.send(example)
        assert json.loads(ws.recv(timeout=5)) == {"type": "error", "error": "join first"}
