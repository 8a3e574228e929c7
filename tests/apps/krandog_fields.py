"""Reports the request object's fields, for HTTP requests and for every WebSocket message."""

from __future__ import annotations

import json
from typing import Any

connections: list[Any] = []  # every req.ws seen, by identity


def _common(req: Any) -> dict[str, Any]:
    return {
        "type": req.type,
        "pathname": req.pathname,
        "url": req.url,
        "query": {key: req.query.getall(key) for key in req.query},
        "query_first": dict(req.query),
        "headers": dict(req.headers),
        "x_test_upper": req.headers.get("X-TEST"),
        "has_X_Test": "X-Test" in req.headers,
        "client": list(req.client) if req.client else None,
    }


def handler(req: Any) -> Any:
    out = _common(req)
    if req.type == "http":
        out.update(method=req.method, body=req.body.decode("latin-1"), text=req.text)
        if req.headers.get("content-type") == "application/json":
            out["json"] = req.json()
        return out
    ws = req.ws
    index = next((i for i, seen in enumerate(connections) if seen is ws), None)
    if index is None:
        connections.append(ws)
        index = len(connections) - 1
    out.update(
        data_type=type(req.data).__name__,
        data=req.data if isinstance(req.data, str) else req.data.hex(),
        connection_index=index,
        ws_in_list=ws in connections,
        ready_state=ws.readyState,
        open_constant=ws.OPEN,
        ws_url=ws.url,
        ws_pathname=ws.pathname,
    )
    ws.send(json.dumps(out))
    return None
