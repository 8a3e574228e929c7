"""A real ``redis-server`` on a free loopback port, for the pub/sub tests: started and stopped
by the tests, restartable (empty: no persistence) on the same port to test reconnection."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from tests.support.certs import Certificates

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``start()``, ``stop()``, ``restart()``; ``url`` for the brokers. With ``tls`` (a
    ``Certificates``), it serves TLS only and ``url`` is a ``rediss://`` URL trusting its CA."""

    def __init__(self, tls: Certificates | None = None) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="krandog-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = tls

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.cafile}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [REDIS_SERVER, "--bind", "127.0.0.1"]
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            args += ["--tls-cert-file", str(self.tls.certfile)]
            args += ["--tls-key-file", str(self.tls.keyfile)]
            args += ["--tls-ca-cert-file", str(self.tls.cafile)]
        args += ["--save", "", "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()  # as a crash would: no goodbye to the clients
            proc.wait(5)

    def restart(self, down_for: float = 0.0) -> None:
        """Kill it and start an empty one on the same port (after ``down_for`` seconds)."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def command(self, *args: str) -> bytes:
        """One command over a raw socket (RESP), the reply's raw bytes."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
            sock = raw
            if self.tls is not None:
                sock = self.tls.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(b"".join(parts))
            return sock.recv(65536)

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        self.command("FLUSHALL")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def available() -> bool:
    return os.path.exists(REDIS_SERVER)
