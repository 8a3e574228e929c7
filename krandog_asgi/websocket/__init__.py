"""The RFC 6455 core, without I/O: frames, the connection state machine, the opening
handshake and permessage-deflate (RFC 7692).

Shared by the server (``ws_protocol``) and the client (``wsclient``). Nothing here imports
asyncio, sockets, the HTTP server, the client or the krandog layer; ``tests/test_layering.py``
holds it to that.
"""
