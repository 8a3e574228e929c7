"""What a server process is made of besides its protocols: loading the app, binding the socket
and TLS, per-process state and the tick, the lifespan protocol, logging, environment files and
the multi-process supervisor.
"""
