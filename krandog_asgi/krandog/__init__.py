"""krandog-style handlers as a plain ASGI 3 app, behind ``compat``.

This layer speaks ASGI only: it imports nothing of the server, the transport, the client or
the WebSocket core, so ``krandog_app(handler)`` runs under any ASGI server.
"""
