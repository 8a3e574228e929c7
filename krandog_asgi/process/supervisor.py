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

__all__ = ["run_reloader", "run_workers"]

logger = logging.getLogger("krandog_asgi.error")

_spawn = multiprocessing.get_context("spawn")
STARTUP_FAILED = 3  # a worker's exit code when lifespan startup failed: do not respawn


WorkerTarget = Callable[[Config, socket.socket], None]
"""A worker process's entry point: serve ``config`` on the inherited listening socket. It is
passed in by ``server`` (and must be a module-level function, so that spawn can pickle it),
which keeps this module free of any import of the server."""


class _Worker:
    def __init__(self, target: WorkerTarget, config: Config, sock: socket.socket) -> None:
        self.process: Any = _spawn.Process(target=target, args=(config, sock), daemon=False)
        self.process.start()
        self.started = time.monotonic()

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def stop(self, timeout: float) -> None:
        proc = self.process
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
        proc.join(timeout)
        if proc.is_alive():
            logger.warning("Worker [%d] did not stop in %.0fs; killing it.", proc.pid, timeout)
            proc.kill()
            proc.join(5)


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
    workers = [_Worker(target, config, sock) for _ in range(config.workers)]
    exit_code = 0
    try:
        while not signals.exit.is_set():
            signals.wake.wait(0.5)
            signals.wake.clear()
            if signals.restart.is_set():
                signals.restart.clear()
                logger.info("Restarting workers one by one.")
                for i, worker in enumerate(workers):
                    if signals.exit.is_set():
                        break
                    workers[i] = _Worker(target, config, sock)
                    worker.stop(_stop_timeout(config))
            for i, worker in enumerate(workers):
                if signals.exit.is_set() or worker.alive():
                    continue
                code = worker.process.exitcode
                if code == STARTUP_FAILED:
                    logger.error("Worker [%d] failed to start; exiting.", worker.process.pid)
                    exit_code = STARTUP_FAILED
                    signals.exit.set()
                    break
                logger.warning(
                    "Worker [%d] died (exit code %s); starting a new one.", worker.process.pid, code
                )
                if time.monotonic() - worker.started < 1.0:
                    time.sleep(1.0)  # a crash loop should not spin
                workers[i] = _Worker(target, config, sock)
    finally:
        logger.info("Stopping %d worker(s).", len(workers))
        threads = [threading.Thread(target=w.stop, args=(_stop_timeout(config),)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sock.close()
        if config.uds:
            remove_unix_socket(config.uds)
        logger.info("Stopped parent process [%d]", os.getpid())
    return exit_code


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
