"""The cluster across real OS processes: node processes, a real server, real SIGKILLs.

Each test starts node processes (``python -m tests.remote_node``) that host the exported
``worker`` and record the ids of the jobs they handle; the test process is a node too, and
produces. Waits are bounded; the conditions waited for are observed, never assumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import triactor
from tests.polling import eventually
from tests.remote_actors import AskVia, Echo, Fail, Job, KillNode, Slow, Worker
from triactor import AskCycleError, DeadLetterReason, RemoteError, open_actor_system
from triactor.remote._redis import open_connection

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


class NodeProcess:
    """One node process hosting ``worker`` (or another name), recording into a file."""

    def __init__(
        self,
        url: str,
        cluster: str,
        node: str,
        record: Path,
        name: str = "worker",
        **options: object,
    ) -> None:
        self.node = node
        self.record = record
        self.args = [
            sys.executable,
            "-m",
            "tests.remote_node",
            "--url",
            url,
            "--cluster",
            cluster,
            "--node",
            node,
            "--name",
            name,
            "--record",
            str(record),
        ]
        for option, value in options.items():
            self.args += [f"--{option.replace('_', '-')}", str(value)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )

    async def wait_ready(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        with trio.fail_after(30):
            line = await trio.to_thread.run_sync(stdout.readline)
        assert line.strip() == b"ready", f"node {self.node} did not start: {line!r}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return -9
        return self.process.returncode

    def ids(self) -> list[int]:
        if not self.record.exists():
            return []
        return [int(line) for line in self.record.read_text().split()]


@pytest.fixture
def cluster_name() -> str:
    return f"p{uuid.uuid4().hex[:10]}"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.stop()


async def start_nodes(
    nodes: list[NodeProcess], url: str, cluster: str, tmp_path: Path, count: int, **options: object
) -> list[NodeProcess]:
    made = []
    for index in range(count):
        node = NodeProcess(url, cluster, f"n{index + 1}", tmp_path / f"n{index + 1}.ids", **options)
        node.start()
        nodes.append(node)
        made.append(node)
    for node in made:
        await node.wait_ready()
    return made


@asynccontextmanager
async def producer(
    url: str, cluster: str, **options: object
) -> AsyncIterator[triactor.ActorSystem]:
    async with open_actor_system(
        cluster=triactor.Cluster(url, name=cluster, node="producer", claim_after=2.0, **options)
    ) as system:
        yield system


async def stream_state(url: str, cluster: str, name: str = "worker") -> tuple[int, int, int]:
    async with open_connection(url) as conn:
        key = f"triactor:{cluster}:mailbox:{name}"
        length = await conn.execute("XLEN", key)
        pending = (await conn.execute("XPENDING", key, "triactor"))[0]
        dead = await conn.execute("XLEN", f"triactor:{cluster}:dead-letters")
    return length, pending, dead


async def drained(url: str, cluster: str) -> None:
    async def empty() -> bool:
        return (await stream_state(url, cluster))[:2] == (0, 0)

    await eventually(empty, 20, "the stream to be empty with nothing pending")


async def test_sigkill_mid_stream_loses_nothing(
    redis_url: str, cluster_name: str, nodes: list[NodeProcess], tmp_path: Path
) -> None:
    workers = await start_nodes(nodes, redis_url, cluster_name, tmp_path, 3)
    victim = workers[0]
    total = 20_000
    async with producer(redis_url, cluster_name) as system:
        worker = system.remote("worker", Worker)
        for index in range(total):
            await worker.tell(Job(index))
            if index % 250 == 0 and victim.alive() and len(victim.ids()) >= 1000:
                victim.kill()
        assert not victim.alive(), "the victim never handled enough to be killed mid-stream"

        def all_handled() -> bool:
            return len({i for w in workers for i in w.ids()}) == total

        await eventually(all_handled, 60, "every id to be handled")
    await drained(redis_url, cluster_name)
    counts = Counter(i for w in workers for i in w.ids())
    assert set(counts) == set(range(total))
    duplicates = {i for i, n in counts.items() if n > 1}
    killed = set(victim.ids())
    # Duplicates come only from the killed node's messages (handled, never acknowledged).
    assert duplicates <= killed
    assert all(n == 2 for n in (counts[i] for i in duplicates))
    print(f"duplicates: {len(duplicates)} of {total}")
    length, pending, dead = await stream_state(redis_url, cluster_name)
    assert (length, pending, dead) == (0, 0, 0)
    for worker_node in workers[1:]:
        assert worker_node.stop() == 0


async def test_client_kill_and_server_restart_lose_nothing(
    private_redis: object,
    cluster_name: str,
    nodes: list[NodeProcess],
    tmp_path: Path,
    log_records: list[dict[str, object]],
) -> None:
    url: str = private_redis.url  # type: ignore[attr-defined]
    workers = await start_nodes(nodes, url, cluster_name, tmp_path, 2)
    total = 4000
    async with producer(url, cluster_name) as system:
        worker = system.remote("worker", Worker)
        for index in range(total):
            await worker.tell(Job(index, 0.0005))
            if index == 1000:
                async with open_connection(url) as conn:
                    await conn.execute("CLIENT", "KILL", "TYPE", "normal")
            if index == 2500:
                private_redis.restart()  # type: ignore[attr-defined]

        def all_handled() -> bool:
            return len({i for w in workers for i in w.ids()}) == total

        await eventually(all_handled, 60, "every id to be handled after the outages")
    await drained(url, cluster_name)
    assert all(w.alive() for w in workers), "the nodes recover on their own"
    assert {i for w in workers for i in w.ids()} == set(range(total))
    assert (await stream_state(url, cluster_name))[2] == 0
    for worker_node in workers:
        assert worker_node.stop() == 0
    # Each outage is logged once by this node, not once per connection.
    outages = [r for r in log_records if "is unreachable" in str(r["message"])]
    assert len(outages) == 2, [r["message"] for r in outages]


async def test_poison_goes_to_the_dead_letter_stream_while_others_flow(
    redis_url: str, cluster_name: str, nodes: list[NodeProcess], tmp_path: Path
) -> None:
    workers = await start_nodes(nodes, redis_url, cluster_name, tmp_path, 2, max_deliveries=3)
    total = 300
    restarts = 0

    async def restart_the_dead_until_done() -> bool:
        nonlocal restarts
        for node in workers:
            if not node.alive():  # the poison killed it: restart it, as a launcher would
                restarts += 1
                node.start()
                await node.wait_ready()
        handled = {i for w in workers for i in w.ids()}
        return len(handled) == total and bool((await stream_state(redis_url, cluster_name))[2])

    async with producer(redis_url, cluster_name, max_deliveries=3) as system:
        worker = system.remote("worker", Worker)
        await worker.tell(KillNode())
        for index in range(total):
            await worker.tell(Job(index, 0.001))
        await eventually(restart_the_dead_until_done, 90, "the jobs done and the poison out")
    assert restarts == 3  # delivered max_deliveries times, each killing its host
    async with open_connection(redis_url) as conn:
        rows = await conn.execute("XRANGE", f"triactor:{cluster_name}:dead-letters", "-", "+")
    assert len(rows) == 1
    fields = dict(zip(rows[0][1][::2], rows[0][1][1::2], strict=True))
    assert fields[b"reason"].startswith(b"poison: delivered 3 times")
    await drained(redis_url, cluster_name)


async def test_fast_producer_blocks_against_a_slow_remote_consumer(
    redis_url: str, cluster_name: str, nodes: list[NodeProcess], tmp_path: Path
) -> None:
    await start_nodes(nodes, redis_url, cluster_name, tmp_path, 1)
    longest = 0
    sent = 0
    async with producer(redis_url, cluster_name) as system:
        worker = system.remote("worker", Worker)
        with trio.move_on_after(3):
            while True:
                await worker.tell(Job(sent, 0.01))  # the consumer does 100/s at most
                sent += 1
                if sent % 50 == 0:
                    longest = max(longest, (await stream_state(redis_url, cluster_name))[0])
    bound = Worker.mailbox_capacity * 2
    assert longest <= bound + 1
    # 3 s at 100/s, plus what fits: the cluster's bound, the local queue, the host's mailbox.
    assert sent <= 300 + bound + 256 + Worker.mailbox_capacity + 50


async def test_asks_across_processes(
    redis_url: str, cluster_name: str, nodes: list[NodeProcess], tmp_path: Path
) -> None:
    first = NodeProcess(redis_url, cluster_name, "n1", tmp_path / "n1.ids")
    second = NodeProcess(redis_url, cluster_name, "n2", tmp_path / "n2.ids", name="other")
    for node in (first, second):
        node.start()
        nodes.append(node)
        await node.wait_ready()
    async with producer(redis_url, cluster_name) as system:
        worker = system.remote("worker", Worker)
        with trio.fail_after(10):
            assert await worker.ask(Echo("hello")) == "hello from n1"
            with pytest.raises(RemoteError) as info:
                await worker.ask(Fail("bad input"))
            assert info.value.remote_type == "builtins.ValueError"
            assert info.value.node == "n1" and info.value.actor == "/root/worker"
            assert "bad input" in info.value.remote_traceback
            with pytest.raises(trio.TooSlowError):
                await worker.ask(Slow(0.5), timeout=0.1)
            await eventually(
                lambda: any(d.reason is DeadLetterReason.LATE_REPLY for d in system.dead_letters),
                5,
                "the late reply",
            )
            late = [
                d.message for d in system.dead_letters if d.reason is DeadLetterReason.LATE_REPLY
            ]
            assert late == ["slow done"]
            # worker asks other, which asks worker back while worker waits: refused at once.
            with pytest.raises(AskCycleError):
                await worker.ask(AskVia("other", 1))
            assert await worker.ask(AskVia("other", 0)) == "end from n2"


@pytest.mark.parametrize("how", ["flag", "environment"])
async def test_the_launcher_joins_a_cluster(redis_url: str, cluster_name: str, how: str) -> None:
    from tests.remote_actors import Greeter

    triactor_command = str(Path(sys.executable).parent / "triactor")
    command = [triactor_command, "run", "tests.remote_actors:greeter_tree"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if how == "flag":
        command += ["--cluster", redis_url, "--cluster-name", cluster_name]
    else:
        env["TRIACTOR_CLUSTER"] = redis_url
        env["TRIACTOR_CLUSTER_NAME"] = cluster_name
    process = await trio.lowlevel.open_process(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with producer(redis_url, cluster_name) as system:
            reply = await system.remote("greeter", Greeter).ask(Echo("you"), timeout=30)
        assert reply.startswith("hello you from ") and reply.endswith(f"-{process.pid}")
    finally:
        process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            assert await process.wait() == 0


def test_a_bad_cluster_url_is_one_line_and_exit_2() -> None:
    triactor_command = str(Path(sys.executable).parent / "triactor")
    done = subprocess.run(
        [triactor_command, "run", "tests.remote_actors:greeter_tree", "--cluster", "http://x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--cluster" in done.stderr
