"""The chat example as a cluster: two server processes (the real CLI) on two ports with
``--workers 2`` each and one real Redis. Every client sees every join, message and leave
exactly once and in order per sender; names are unique across the cluster; users of a worker
killed with SIGKILL leave; after Redis restarts empty, messages flow again, the user list is
complete again and names stay unique.

The tests share one cluster (module fixture) and use their own names, so each sees the
others' users as strangers and checks only what it set up.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.pubsub.chat_client import ChatClient
from tests.pubsub.redis_server import RedisServer
from tests.support.fakes import run
from tests.support.servers import RunningServer, start_server, wait_until

TTL = "3"
HEARTBEAT = "0.5"


@dataclass
class Cluster:
    redis: RedisServer
    servers: list[RunningServer]

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def worker_pids(self, server: RunningServer) -> list[int]:
        """Workers alive now (the parent logs each it starts)."""
        pids = [int(p) for p in re.findall(r"Started server process \[(\d+)\]", server.log)]
        return [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(redis_session: RedisServer) -> Iterator[Cluster]:
    redis_session.flush()
    flags = ["--workers", "2", "--broadcast-url", redis_session.url]
    flags += ["--presence-ttl", TTL, "--presence-heartbeat", HEARTBEAT]
    servers = [start_server("examples.chat:handler", *flags) for _ in range(2)]
    try:
        for server in servers:  # both workers connected to Redis
            connected = wait_until(lambda s=server: s.log.count("Connected to Redis") >= 2, 15)
            assert connected, server.log
        yield Cluster(redis_session, servers)
    finally:
        for server in servers:
            server.stop()


async def join_all(cluster: Cluster, names: list[str]) -> list[ChatClient]:
    """One client per name, alternating between the two servers, joined one after another."""
    clients = []
    for i, name in enumerate(names):
        client = await ChatClient.open(cluster.ports[i % 2])
        reply = await client.join(name)
        assert reply["type"] == "welcome", reply
        assert name in reply["users"]
        clients.append(client)
    return clients


def test_every_client_sees_every_join_message_and_leave_once_in_order(cluster: Cluster) -> None:
    async def main() -> None:
        names = [f"order{i}" for i in range(6)]
        clients = await join_all(cluster, names)
        last = clients[-1].of_type("welcome")[0]
        assert set(names) <= set(last["users"])
        for round_ in range(5):
            for client in clients:
                await client.send(type="message", text=f"{client.name}:{round_}")
        expected = {c.name: [f"{c.name}:{r}" for r in range(5)] for c in clients}
        for client in clients:
            await client.wait_for(
                lambda m: m["type"] == "message" and m["text"] == f"{names[-1]}:4", 15
            )
        await asyncio.sleep(0.5)  # anything duplicated would have arrived by now
        for client in clients:
            for sender, texts in expected.items():
                got = [m["text"] for m in client.of_type("message") if m["name"] == sender]
                assert got == texts, (client.name, sender, got)
            # Joins: every one after (and including) its own, once each, in join order.
            mine = names.index(client.name or "")
            joins = [m["name"] for m in client.of_type("join") if m["name"] in names]
            assert joins == names[mine:], (client.name, joins)
        leaving = clients.pop(0)
        await leaving.close()
        for client in clients:
            leave = await client.wait_for(lambda m: m == m | {"type": "leave", "name": "order0"})
            assert "order0" not in leave["users"]
            assert set(names[1:]) <= set(leave["users"])
        await asyncio.sleep(0.3)
        for client in clients:
            assert [m["name"] for m in client.of_type("leave")].count("order0") == 1
            await client.close()

    run(main(), timeout=90)


def test_after_concurrent_joins_everyone_ends_with_the_whole_list(cluster: Cluster) -> None:
    """Joins on different processes interleave in any order; the last list each client got
    still has every name (each process keeps the set, and joins commute)."""

    async def main() -> None:
        names = [f"together{i}" for i in range(10)]
        clients = [await ChatClient.open(cluster.ports[i % 2]) for i in range(len(names))]
        replies = await asyncio.gather(*(c.join(n) for c, n in zip(clients, names, strict=True)))
        assert all(r["type"] == "welcome" for r in replies), replies

        def complete(client: ChatClient) -> bool:
            lists = [m["users"] for m in client.received if m["type"] in ("join", "leave")]
            return bool(lists) and set(names) <= set(lists[-1])

        deadline = time.monotonic() + 15
        while not all(complete(c) for c in clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [c.name for c in clients if not complete(c)] == []
        for client in clients:
            await client.close()

    run(main(), timeout=60)


def test_a_name_is_unique_across_processes(cluster: Cluster) -> None:
    async def main() -> None:
        (alice,) = await join_all(cluster, ["unique-alice"])
        for port in cluster.ports:
            other = await ChatClient.open(port)
            assert await other.join("unique-alice") == {
                "type": "error",
                "error": "that name is taken",
            }
            await other.close()
        await alice.close()

    run(main(), timeout=60)


def test_users_of_a_sigkilled_worker_leave_within_60s(cluster: Cluster) -> None:
    async def main() -> None:
        names = [f"kill{i}" for i in range(8)]
        clients = await join_all(cluster, names)
        target = cluster.servers[0]
        dropped: list[ChatClient] = []
        for pid in cluster.worker_pids(target):  # the first worker that has clients of ours
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(1.0)
            dropped = [c for c in clients if c.closed.is_set()]
            if dropped:
                break
        assert dropped, "no client was on a worker of the first server"
        killed_at = time.monotonic()
        survivors = [c for c in clients if c not in dropped]
        gone = {c.name for c in dropped}
        for client in survivors:
            for name in gone:
                leave = await client.wait_for(
                    lambda m, n=name: m["type"] == "leave" and m["name"] == n, 60
                )
                assert name not in leave["users"]
        assert time.monotonic() - killed_at < 60
        await asyncio.sleep(0.5)
        for client in survivors:
            leaves = [m["name"] for m in client.of_type("leave") if m["name"] in gone]
            assert sorted(leaves) == sorted(gone)  # once each
        # The name of a user who left that way is free again.
        newcomer = await ChatClient.open(cluster.ports[1])
        assert (await newcomer.join(sorted(gone)[0]))["type"] == "welcome"
        for client in [*survivors, newcomer]:
            await client.close()

    run(main(), timeout=120)


def test_after_redis_restarts_empty_the_chat_recovers(cluster: Cluster) -> None:
    async def main() -> None:
        names = [f"restart{i}" for i in range(4)]
        clients = await join_all(cluster, names)
        cluster.redis.restart(down_for=1.0)
        restarted_at = time.monotonic()
        sender, others = clients[0], clients[1:]
        # Messages flow again: send until one gets through to everyone.
        delivered = False
        attempt = 0
        while not delivered and time.monotonic() - restarted_at < 30:
            attempt += 1
            text = f"after-restart-{attempt}"
            await sender.send(type="message", text=text)
            await asyncio.sleep(0.5)
            delivered = all(
                any(m.get("text") == text for m in c.of_type("message")) for c in clients
            )
        assert delivered, "no message got through within 30 s of the restart"
        # The user list is complete again, and names are still unique.
        newcomer = await ChatClient.open(cluster.ports[1])
        welcome = await newcomer.join("restart-new", timeout=30)
        assert welcome["type"] == "welcome", welcome
        assert set(names) <= set(welcome["users"])
        assert time.monotonic() - restarted_at < 60
        taken = await ChatClient.open(cluster.ports[0])
        assert (await taken.join("restart1"))["error"] == "that name is taken"
        for other in others:  # the welcome's join reached everyone once
            await other.wait_for(lambda m: m["type"] == "join" and m["name"] == "restart-new")
        for client in [*clients, newcomer, taken]:
            await client.close()

    run(main(), timeout=120)


def test_workers_with_the_memory_backend_warn_that_rooms_are_per_process() -> None:
    server = start_server("examples.chat:handler", "--workers", "2")
    try:
        assert server.wait_for_log(r"WARNING.*rooms are per worker process", 5), server.log
    finally:
        server.stop()


def test_users_of_a_server_stopped_with_sigterm_leave_at_once(redis_session: RedisServer) -> None:
    """A graceful stop says goodbye: the leaves are announced while it shuts down, long before
    the presence TTL (60 s here) would have expired them."""
    flags = ["--broadcast-url", redis_session.url, "--presence-ttl", "60"]
    flags += ["--timeout-graceful-shutdown", "5"]
    first, second = (start_server("examples.chat:handler", *flags) for _ in range(2))
    try:

        async def main() -> None:
            stay = await ChatClient.open(first.port)
            assert (await stay.join("sigterm-stay"))["type"] == "welcome"
            go = await ChatClient.open(second.port)
            assert (await go.join("sigterm-go"))["type"] == "welcome"
            await stay.wait_for(lambda m: m["type"] == "join" and m["name"] == "sigterm-go")
            stopping = asyncio.get_running_loop().run_in_executor(None, second.stop)
            leave = await stay.wait_for(
                lambda m: m["type"] == "leave" and m["name"] == "sigterm-go", 20
            )
            assert "sigterm-go" not in leave["users"]
            assert await stopping == 0
            await stay.close()

        run(main(), timeout=60)
    finally:
        first.stop()
        second.stop()
