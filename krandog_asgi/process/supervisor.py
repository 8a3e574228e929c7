"""Multi-process modes: ``--workers N`` (restarted when they die) and ``--reload`` (watchfiles).

The parent binds the listening socket once and passes it to every child (spawned, not forked,
so children start from a clean interpreter), so all workers accept from the same queue and a
restarted worker never misses the port.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from types import FrameType
from typing import Any

from krandog_asgi.config import Config
from krandog_asgi.process.binding import bind_socket, remove_unix_socket, running_on
from krandog_asgi.process.broadcast import warn_per_process_rooms

__all__ = ["run_reloader", "run_workers"]

logger = logging.getLogger("krandog_asgi.error")

_spawn = multiprocessing.get_context("spawn")
STARTUP_FAILED = 3  # a worker's exit code when lifespan startup failed: do not respawn


WorkerTarget = Callable[[Config, socket.socket, Any], None]
"""A worker process's entry point: serve ``config`` on the inherited listening socket, and
answer the supervisor's pings on the pipe given as the third argument (None: no health check).
It is passed in by ``server`` (and must be a module-level function, so that spawn can pickle
it), which keeps this module free of any import of the server."""

READY, PING, PONG = b"ready", b"ping", b"pong"  # the health-check pipe's messages


class _Worker:
    """One child process, and the supervisor's end of its health-check pipe."""

    def __init__(
        self, target: WorkerTarget, config: Config, sock: socket.socket, check: bool = False
    ) -> None:
        self.pipe: Any = None
        child: Any = None
        if check:
            self.pipe, child = _spawn.Pipe()
        self.process: Any = _spawn.Process(target=target, args=(config, sock, child), daemon=False)
        self.process.start()
        if child is not None:
            child.close()  # the worker holds its own copy; ours would hide its end
        self.started = time.monotonic()
        self.ready = False  # it said it serves: from then on it must answer pings
        self.ping_sent = 0.0  # when the unanswered ping went out (0: none)

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def healthy(self, now: float, timeout: float) -> bool:
        """Read its answers, send the next ping; False once a ping went unanswered for
        ``timeout`` seconds (the event loop is stuck, or the process is stopped)."""
        pipe = self.pipe
        if pipe is None:
            return True
        try:
            while pipe.poll():
                pipe.recv_bytes()  # READY or PONG: either way it is answering
                self.ready = True
                self.ping_sent = 0.0
            if not self.ready:
                return True  # still starting (imports, lifespan startup)
            if self.ping_sent:
                return now - self.ping_sent < timeout
            pipe.send_bytes(PING)
            self.ping_sent = now
        except (EOFError, OSError):
            pass  # it is exiting: the check for dead workers takes it from here
        return True

    def stop(self, timeout: float) -> None:
        proc = self.process
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
        proc.join(timeout)
        if proc.is_alive():
            logger.warning("Worker [%d] did not stop in %.0fs; killing it.", proc.pid, timeout)
            proc.kill()
            proc.join(5)
        self.close_pipe()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.close_pipe()

    def close_pipe(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None


class _Signals:
    """SIGINT/SIGTERM ask the parent to exit; SIGHUP asks for a (rolling) restart."""

    def __init__(self) -> None:
        self.exit = threading.Event()
        self.restart = threading.Event()
        self.wake = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_exit)
        signal.signal(signal.SIGTERM, self._on_exit)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._on_hup)

    def _on_exit(self, signum: int, frame: FrameType | None) -> None:
        self.exit.set()
        self.wake.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.restart.set()
        self.wake.set()


def _stop_timeout(config: Config) -> float:
    graceful = config.timeout_graceful_shutdown
    return (graceful if graceful is not None else 30.0) + 5.0


def run_workers(config: Config, target: WorkerTarget) -> int:
    """Run ``config.workers`` server processes on one shared socket until signalled."""
    try:
        sock = bind_socket(config)
    except OSError as exc:
        logger.error("%s", exc)
        return 1
    signals = _Signals()
    signals.install()
    logger.info("%s", running_on(sock, "https" if config.is_ssl else "http"))
    logger.info("Started parent process [%d]", os.getpid())
    warn_per_process_rooms(config)
    pool = _Pool(config, target, sock, signals)
    try:
        return pool.run()
    finally:
        pool.stop_all()
        sock.close()
        if config.uds:
            remove_unix_socket(config.uds)
        logger.info("Stopped parent process [%d]", os.getpid())


class _Pool:
    """The workers of ``--workers``: replaced when they die or stop answering, restarted one
    by one on SIGHUP."""

    def __init__(
        self, config: Config, target: WorkerTarget, sock: socket.socket, signals: _Signals
    ) -> None:
        self.config = config
        self.target = target
        self.sock = sock
        self.signals = signals
        self.health_timeout = config.timeout_worker_healthcheck or 0.0
        self.workers = [self.spawn() for _ in range(config.workers)]

    def spawn(self) -> _Worker:
        check = self.health_timeout > 0
        return _Worker(self.target, self.config, self.sock, check)

    def run(self) -> int:
        signals = self.signals
        while not signals.exit.is_set():
            signals.wake.wait(0.5)
            signals.wake.clear()
            if signals.restart.is_set():
                signals.restart.clear()
                self.rolling_restart()
            if self.replace_dead() == STARTUP_FAILED:
                return STARTUP_FAILED
            if self.health_timeout:
                self.replace_unhealthy()
        return 0

    def rolling_restart(self) -> None:
        logger.info("Restarting workers one by one.")
        for i, worker in enumerate(self.workers):
            if self.signals.exit.is_set():
                break
            self.workers[i] = self.spawn()
            worker.stop(_stop_timeout(self.config))

    def replace_dead(self) -> int | None:
        """Respawn every worker that exited; STARTUP_FAILED ends it all (it would fail again)."""
        for i, worker in enumerate(self.workers):
            if self.signals.exit.is_set() or worker.alive():
                continue
            code = worker.process.exitcode
            worker.close_pipe()
            if code == STARTUP_FAILED:
                logger.error("Worker [%d] failed to start; exiting.", worker.process.pid)
                self.signals.exit.set()
                return STARTUP_FAILED
            logger.warning(
                "Worker [%d] died (exit code %s); starting a new one.", worker.process.pid, code
            )
            if time.monotonic() - worker.started < 1.0:
                time.sleep(1.0)  # a crash loop should not spin
            self.workers[i] = self.spawn()
        return None

    def replace_unhealthy(self) -> None:
        now = time.monotonic()
        for i, worker in enumerate(self.workers):
            if self.signals.exit.is_set() or worker.healthy(now, self.health_timeout):
                continue
            logger.warning(
                "Worker [%d] did not answer a health check within %gs; killing it and "
                "starting a new one.",
                worker.process.pid,
                self.health_timeout,
            )
            worker.kill()
            self.workers[i] = self.spawn()

    def stop_all(self) -> None:
        workers = self.workers
        logger.info("Stopping %d worker(s).", len(workers))
        timeout = _stop_timeout(self.config)
        threads = [threading.Thread(target=w.stop, args=(timeout,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _make_filter(config: Config, roots: list[Path]) -> Callable[[Any, str], bool]:
    includes = ["*.py", *config.reload_includes]  # as uvicorn: --reload-include adds
    excludes = [".*", "*.py[cod]", "*.sw.*", "~*", "__pycache__", *config.reload_excludes]

    def accept(change: Any, path: str) -> bool:
        name = os.path.basename(path)
        parts = Path(path).parts
        if any(fnmatch(name, pat) or any(fnmatch(p, pat) for p in parts) for pat in excludes):
            return False
        return any(fnmatch(name, pat) or fnmatch(path, pat) for pat in includes)

    return accept


def run_reloader(config: Config, target: WorkerTarget) -> int:
    """Serve in a child process and restart it whenever a watched file changes."""
    try:
        import watchfiles
    except ImportError:
        logger.error("--reload needs the 'watchfiles' package: pip install watchfiles")
        return 1
    roots = [Path(d).resolve() for d in (config.reload_dirs or [os.getcwd()])]
    try:
        sock = bind_socket(config)
    except OSError as exc:
        logger.error("%s", exc)
        return 1
    signals = _Signals()
    signals.install()
    logger.info("Will watch for changes in these directories: %s", [str(r) for r in roots])
    logger.info("%s", running_on(sock, "https" if config.is_ssl else "http"))
    logger.info("Started reloader process [%d] using WatchFiles", os.getpid())
    worker = _Worker(target, config, sock)
    stop = threading.Event()

    def watch_exit() -> None:
        signals.exit.wait()
        stop.set()

    threading.Thread(target=watch_exit, daemon=True).start()
    timeout = min(_stop_timeout(config), 5.0)
    try:
        for changes in watchfiles.watch(
            *roots,
            watch_filter=_make_filter(config, roots),
            stop_event=stop,
            step=max(1, int(config.reload_delay * 1000)),  # quiet time before a restart
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if signals.exit.is_set():
                break
            if not changes:
                continue  # a timeout tick; a crashed app waits for the next change
            names = sorted({os.path.relpath(path) for _, path in changes})
            logger.warning("WatchFiles detected changes in %s. Reloading...", ", ".join(names))
            worker.stop(timeout)
            worker = _Worker(target, config, sock)
    finally:
        worker.stop(timeout)
        sock.close()
        if config.uds:
            remove_unix_socket(config.uds)
        logger.info("Stopping reloader process [%d]", os.getpid())
    return 0
