"""Real framework apps (Django, Channels, python-socketio, Litestar, Quart, Falcon, SSE, uploads,
Range requests) served by our server in a subprocess and driven over real sockets."""
