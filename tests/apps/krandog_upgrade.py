"""Upgrade events: the handler sees the upgrade request and may deny it."""

from __future__ import annotations

from typing import Any

from krandog_asgi import HTTPError, krandog_app


@krandog_app(upgrade=True, lifecycle=True)
def handler(req: Any) -> Any:
    if req.type == "websocket.upgrade":
        assert req.ws.readyState == req.ws.CONNECTING
        path = req.pathname
        if path == "/deny":
            return {"status": 401, "headers": {"WWW-Authenticate": "Bearer"}, "body": "no token\n"}
        if path == "/deny-str":
            return "go away"
        if path == "/close":
            req.ws.close()
            return None
        if path == "/raise":
            raise RuntimeError("upgrade handler failed")
        if path == "/http-error":
            raise HTTPError(429, "slow down")
        if path == "/bad-return":
            return 3.5
        if path == "/proto":
            req.ws.protocol = req.protocols[-1]
        if path == "/bad-proto":
            req.ws.protocol = "not-offered"
        req.ws.send("queued while connecting")
        return None
    if req.type == "websocket.open":
        req.ws.send("open " + req.ws.protocol)
        return None
    if req.type == "websocket":
        req.ws.send(req.data)
        return None
    if req.type == "websocket.close":
        return None
    return {"body": "http"}
