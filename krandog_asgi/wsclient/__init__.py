"""The WebSocket client's pieces behind ``client``: URLs, errors, the asyncio protocol, the
asyncio and browser APIs and the ``connect`` command. It never imports the server.
"""
