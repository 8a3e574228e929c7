"""Serving one process: bind, lifespan, accept, graceful shutdown. ``run()`` is the entry point.

Multi-process modes (``--workers``, ``--reload``) live in ``supervisor``; each worker runs a
``Server`` on the socket its parent bound.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import sysconfig
import threading
import traceback
from collections.abc import Coroutine
from typing import Any

from krandog_asgi.config import Config, ConfigError
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.binding import (
    bind_error,
    bind_socket,
    remove_unix_socket,
    running_on,
)
from krandog_asgi.process.broadcast import start_broker, stop_broker
from krandog_asgi.process.envfile import apply_env_file
from krandog_asgi.process.lifespan import Lifespan
from krandog_asgi.process.loader import ImportFromStringError, load_app
from krandog_asgi.process.logs import configure_logging
from krandog_asgi.process.state import ServerState

__all__ = ["Server", "run", "serve_worker"]

logger = logging.getLogger("krandog_asgi.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server:
    """One worker: ``await Server(config).serve()`` until a signal or ``request_exit()``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state: ServerState | None = None
        self.servers: list[asyncio.Server] = []
        self.started = False
        self.exit_code = 0
        self._exit_event: asyncio.Event | None = None
        self._force_exit = False
        self.bound_addresses: list[tuple[str, int]] = []
        # A worker of --workers/--reload leaves the "running on" line to its supervisor.
        self.announce = True
        self.heartbeat: Any = None  # --workers: the supervisor's health-check pipe

    def run(self, sockets: list[socket.socket] | None = None) -> int:
        """Run on a fresh uvloop event loop; returns the process exit code."""
        try:
            run_coroutine(self.serve(sockets=sockets))
        except KeyboardInterrupt:
            pass
        return self.exit_code

    def request_exit(self) -> None:
        if self._exit_event is not None:
            self._exit_event.set()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        try:
            config.load()
        except Exception as exc:
            _log_load_error(config, exc)
            self.exit_code = 1
            return
        assert config.loaded_app is not None
        logger.info("Started server process [%d]", os.getpid())
        loop = asyncio.get_running_loop()
        self._exit_event = asyncio.Event()
        state = self.state = ServerState(config, config.loaded_app, loop)
        if config.limit_max_requests is not None:
            state.on_limit_reached = self._on_max_requests

        broker = await start_broker(config, state.scope_extensions)
        try:
            await self._serve(state, sockets)
        finally:
            await stop_broker(broker)

    async def _serve(self, state: ServerState, sockets: list[socket.socket] | None) -> None:
        """Lifespan startup, listen until told to stop, shut down in order."""
        config = self.config
        loop = state.loop
        assert config.loaded_app is not None
        assert self._exit_event is not None
        lifespan = Lifespan(config.loaded_app, config.lifespan, state.lifespan_state)
        await lifespan.startup()
        if lifespan.should_exit:
            self.exit_code = 3
            return

        with self._signal_handlers():
            try:
                await self._bind(state, sockets)
            except OSError as exc:
                logger.error("%s", exc)
                self.exit_code = 1
                await lifespan.shutdown()
                return
            # The socket file of a --uds this process bound (not one inherited from a parent).
            bound_here = config.uds if sockets is None and config.uds else None
            state.start_ticking()
            self.started = True
            self._start_heartbeat(loop)
            try:
                await self._exit_event.wait()
            finally:
                self._stop_heartbeat(loop)
                await self._shutdown(state)
                await self._lifespan_shutdown(lifespan)
                state.stop_ticking()
                if state.access_lines is not None:
                    state.access_lines.flush()  # the last lines, before "Finished"
                if bound_here:
                    remove_unix_socket(bound_here)
        logger.info("Finished server process [%d]", os.getpid())

    async def _bind(self, state: ServerState, sockets: list[socket.socket] | None) -> None:
        """Listen on ``sockets`` (bound by a supervisor), else on what the config names."""
        config = self.config
        loop = state.loop
        ctx = config.ssl_context

        def factory() -> HTTPProtocol:
            return HTTPProtocol(state)

        if sockets is None and (config.uds or config.fd is not None):
            sockets = [bind_socket(config)]
        if sockets is None:
            try:
                srv = await loop.create_server(
                    factory,
                    host=config.host,
                    port=config.port,
                    ssl=ctx,
                    backlog=config.backlog,
                    reuse_address=True,
                )
            except OSError as exc:
                raise bind_error(exc, config) from exc
            self.servers.append(srv)
        for sock in sockets or ():
            if sock.family == socket.AF_UNIX:
                srv = await loop.create_unix_server(
                    factory, sock=sock, ssl=ctx, backlog=config.backlog
                )
            else:
                srv = await loop.create_server(factory, sock=sock, ssl=ctx, backlog=config.backlog)
            self.servers.append(srv)
        self._announce("https" if ctx else "http")

    def _announce(self, scheme: str) -> None:
        """Log each address served (tests and scripts read the port of ``--port 0`` here)."""
        for listener in self.servers:
            for sock in listener.sockets or ():
                if sock.family != socket.AF_UNIX:
                    name = sock.getsockname()
                    self.bound_addresses.append((name[0], name[1]))
                if self.announce:
                    logger.info("%s", running_on(sock, scheme))

    def _start_heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        """Answer the supervisor's pings from the event loop itself, so that a loop blocked by
        the app stops answering as surely as a stopped process does."""
        pipe = self.heartbeat
        if pipe is None:
            return
        try:
            pipe.send_bytes(b"ready")
        except OSError:
            return
        loop.add_reader(pipe.fileno(), self._answer_ping, loop)

    def _answer_ping(self, loop: asyncio.AbstractEventLoop) -> None:
        pipe = self.heartbeat
        try:
            while pipe.poll():
                pipe.recv_bytes()
                pipe.send_bytes(b"pong")
        except (EOFError, OSError):  # the supervisor is gone: nobody will stop us otherwise
            self._stop_heartbeat(loop)
            self.request_exit()

    def _stop_heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        pipe, self.heartbeat = self.heartbeat, None
        if pipe is not None:
            loop.remove_reader(pipe.fileno())
            pipe.close()

    def _on_max_requests(self) -> None:
        assert self.state is not None
        logger.warning(
            "Maximum request limit of %d exceeded. Terminating process.", self.state.max_requests
        )
        self.request_exit()

    async def _shutdown(self, state: ServerState) -> None:
        """Stop accepting, let connections finish within ``--timeout-graceful-shutdown``, then
        cut whatever is left."""
        logger.info("Shutting down")
        state.shutting_down = True
        for srv in self.servers:
            srv.close()
        for conn in list(state.connections):
            conn.shutdown()
        await self._wait_for_connections(state)
        await self._cut_leftovers(state)

    async def _wait_for_connections(self, state: ServerState) -> None:
        timeout = self.config.timeout_graceful_shutdown
        loop = state.loop
        deadline = loop.time() + timeout if timeout else None  # 0 or None: no bound
        waiting_logged = False
        while (state.connections or state.cycles) and not self._force_exit:
            if deadline is not None and loop.time() >= deadline:
                logger.warning(
                    "Graceful shutdown timed out after %ss: cancelling %d task(s), closing %d "
                    "connection(s).",
                    timeout,
                    len(state.cycles),
                    len(state.connections),
                )
                return
            if not waiting_logged and state.connections:
                logger.info("Waiting for connections to close. (CTRL+C to force quit)")
                waiting_logged = True
            await asyncio.sleep(0.05)

    async def _cut_leftovers(self, state: ServerState) -> None:
        """Cancel the app tasks and abort the connections still open after the graceful wait
        (none after a clean one), then give the listeners a second to close."""
        for cycle in list(state.cycles):
            task = getattr(cycle, "task", None)
            if task is not None and not task.done():
                task.cancel()
        for conn in list(state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        if state.cycles:
            await asyncio.wait(
                [c.task for c in list(state.cycles) if getattr(c, "task", None)], timeout=1.0
            )
        for srv in self.servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), 1.0)
            except Exception:  # a listener that will not close must not hold up the exit
                pass

    async def _lifespan_shutdown(self, lifespan: Lifespan) -> None:
        """The app's shutdown handler gets ``--timeout-graceful-shutdown`` of its own (after the
        connections had theirs), and a second Ctrl-C ends the wait at once: a hung handler must
        not keep the process alive."""
        timeout = self.config.timeout_graceful_shutdown
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(lifespan.shutdown())
        while not task.done():
            if self._force_exit:
                break
            if timeout and loop.time() - started >= timeout:  # 0 or None: no bound
                logger.warning("Application shutdown did not complete within %ss.", timeout)
                break
            await asyncio.wait([task], timeout=0.1)
        if not task.done():
            task.cancel()
            lifespan.cancel()
            self.exit_code = self.exit_code or 1
            return
        await task
        if lifespan.should_exit:  # lifespan.shutdown.failed, or the app raised
            self.exit_code = self.exit_code or 1

    def _signal_handlers(self) -> _SignalContext:
        return _SignalContext(self)

    def handle_signal(self, sig: int) -> None:
        if self._exit_event is not None and self._exit_event.is_set() and sig == signal.SIGINT:
            self._force_exit = True
        self.request_exit()


class _SignalContext:
    """Installs SIGINT/SIGTERM handlers on the running loop while serving (main thread only)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.installed: list[int] = []

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            try:
                loop.add_signal_handler(sig, self.server.handle_signal, sig)
                self.installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.installed:
            loop.remove_signal_handler(sig)


def _log_load_error(config: Config, exc: Exception) -> None:
    """One line for the user, naming the file and line that raised; the traceback only at
    debug level (and the line says so)."""
    if isinstance(exc, ConfigError):
        logger.error("%s", exc)
    elif isinstance(exc, ImportFromStringError):
        logger.error("Error loading ASGI app. %s", exc)
    else:
        where = f' "{config.app}"' if isinstance(config.app, str) else ""
        located = _where_raised(exc)
        hint = (
            ""
            if logger.isEnabledFor(logging.DEBUG)
            else " Run with --log-level debug to see the traceback."
        )
        logger.error(
            "Error loading ASGI app%s: %s: %s%s.%s",
            where,
            type(exc).__name__,
            exc.msg if isinstance(exc, SyntaxError) else exc,  # its str() has the location
            f" ({located})" if located else "",
            hint,
        )
    logger.debug("Traceback of the error above", exc_info=exc)


def _where_raised(exc: BaseException) -> str:
    """``file.py, line N`` of the innermost frame outside the standard library (importlib's
    own frames skipped), or of the offending line of a SyntaxError."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown_path(exc.filename)}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    outside = [f for f in frames if not _in_stdlib(f.filename)]
    frames = outside or frames
    if not frames:
        return ""
    return f"{_shown_path(frames[-1].filename)}, line {frames[-1].lineno}"


_STDLIB_DIRS = tuple({os.path.join(sysconfig.get_paths()[k], "") for k in ("stdlib", "platstdlib")})


def _in_stdlib(filename: str) -> bool:
    """A file of the standard library (not of an installed package): ``os.environ["X"]``
    fails in os.py on 3.10 but in the unnamed ``<frozen os>`` on 3.11+; the place to show
    is the app's line that called it, on every version."""
    parts = filename.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return filename.startswith(_STDLIB_DIRS)


def _shown_path(path: str) -> str:
    """Relative to the current directory when the file is under it: shorter to read."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def run_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on a new uvloop event loop (plain asyncio where uvloop is unavailable).

    ``uvloop.run`` on every version: on 3.10 it builds the loop itself instead of installing
    uvloop's policy process-wide, which would leak into every later ``asyncio.run`` of the
    embedding program (its tests, a second in-process server).
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        asyncio.run(coro)
        return
    uvloop.run(coro)


def run(app: Any, **options: Any) -> int:
    """Serve ``app`` (an ASGI app, a krandog handler, or a ``"module:attr"`` string) until stopped.

    Accepts every ``Config`` field as a keyword argument. Returns 0 after a clean stop; a
    failure (the app cannot load, the port is taken, lifespan startup failed) exits the process
    with its code (1, or 3 for a failed startup), like ``uvicorn.run``.
    """
    code = _run(app, **options)
    if code:
        # As uvicorn.run does: a script that calls run() must not report success to systemd
        # or Docker when the server could not start.
        sys.exit(code)
    return code


def serve_worker(config: Config, sock: socket.socket, heartbeat: Any = None) -> None:
    """The entry point of a ``--workers``/``--reload`` child process (spawned, so it starts
    from a clean interpreter and sets up logging itself); ``heartbeat``: the pipe on which
    the supervisor pings it."""
    # The --env-file was loaded by the parent: its variables are in our environment already.
    configure_logging(config.log_level, config.access_log, config.use_colors, config.log_config)
    # The parent handles Ctrl-C for the whole group; a worker stops on the SIGTERM it sends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = Server(config)
    server.announce = False
    server.heartbeat = heartbeat
    raise SystemExit(server.run(sockets=[sock]))


def _run(app: Any, **options: Any) -> int:
    config = Config(app=app, **options)
    if config.env_file and not apply_env_file(config.env_file):
        return 1
    try:
        configure_logging(config.log_level, config.access_log, config.use_colors, config.log_config)
    except Exception as exc:  # a missing file, bad syntax, PyYAML not installed...
        print(f"Error: cannot use --log-config {config.log_config}: {exc}", file=sys.stderr)
        return 1
    if config.reload and config.workers > 1:
        logger.warning('"workers" is ignored when "reload" is enabled.')
    if (config.workers > 1 or config.reload) and not isinstance(config.app, str):
        logger.error(
            "You must pass the application as an import string to enable 'reload' or 'workers'."
        )
        return 1
    if config.reload:
        from krandog_asgi.process.supervisor import run_reloader

        return run_reloader(config, serve_worker)
    if config.workers > 1:
        from krandog_asgi.process.supervisor import run_workers

        try:
            config.check_options()  # fail fast, in the parent, with one clear line
            load_app(config)
        except Exception as exc:
            _log_load_error(config, exc)
            return 1
        return run_workers(config, serve_worker)
    return Server(config).run()
