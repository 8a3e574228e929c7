"""krandog-style handlers as a plain ASGI 3 app, behind ``compat``.

This layer speaks ASGI only: it imports nothing of the server, the transport, the client or
the WebSocket core, so ``krandog_app(handler)`` runs under any ASGI server.

Modules, each importing only those before it: ``asgi`` (the types it takes), ``channels``
(the pub/sub broker, found in the scope), ``scope`` (what requests and connections read from
the scope), ``response`` (return values and errors to
responses), ``sender`` (``req.ws``), ``request`` (``req``), ``app`` (the ASGI app).
"""
