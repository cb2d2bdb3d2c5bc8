"""Remote tell and ask between two node processes on one machine, against two floors.

The floors are measured in the same run: an in-process tell of the same messages, and a
pipelined ``XADD`` of the same encoded payloads to the same server (what Redis itself costs).
The receiving node runs in a second process (``benchmarks._remote_sink``); this process is the
sending node. The server is a private one on a unix socket, started for the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import trio

import triactor
from triactor import open_actor_system
from triactor.remote._codec import Kind
from triactor.remote._redis import open_connection
from triactor.remote._server import PrivateServer

from ._remote_sink import Count, Echo, Sink, Tick
from ._table import print_table, verdict

TELLS = 100_000
ASKS = 3_000
CONCURRENT_ASKS = 20_000
IN_FLIGHT = 32
ROOT = Path(__file__).resolve().parent.parent


async def local_tell() -> float:
    async with open_actor_system() as system:
        sink = await system.spawn(Sink)  # the same actor as the remote one
        start = time.perf_counter()
        for n in range(TELLS):
            await sink.tell(Tick(n))
        assert await sink.ask(Count()) == TELLS
        return TELLS / (time.perf_counter() - start)


async def xadd_floor(url: str, payload: bytes) -> float:
    async with open_connection(url) as conn:
        key = "bench:xadd-floor"
        await conn.execute("DEL", key)
        start = time.perf_counter()
        for n in range(TELLS):
            conn.send_nowait("XADD", key, "*", "m", payload)
            if n % 512 == 511:
                await conn.execute("PING")
        await conn.execute("PING")
        rate = TELLS / (time.perf_counter() - start)
        await conn.execute("DEL", key)
        return rate


async def remote_workloads(url: str) -> dict[str, float]:
    results: dict[str, float] = {}
    cluster = triactor.Cluster(url, name="bench", node="sender")
    async with open_actor_system(cluster=cluster) as system:
        sink = system.remote("sink", Sink)
        assert await sink.ask(Count(), timeout=30) == 0
        start = time.perf_counter()
        for n in range(TELLS):
            await sink.tell(Tick(n))
        with trio.fail_after(120):
            assert await sink.ask(Count()) == TELLS
        results["tell"] = TELLS / (time.perf_counter() - start)

        samples = []
        for n in range(ASKS):
            begin = time.perf_counter_ns()
            assert await sink.ask(Echo(n)) == n
            samples.append(time.perf_counter_ns() - begin)
        samples.sort()
        results["ask_p50_us"] = samples[len(samples) // 2] / 1000
        results["ask_p99_us"] = samples[int(len(samples) * 0.99)] / 1000

        async def asker(count: int) -> None:
            for n in range(count):
                await sink.ask(Echo(n))

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(IN_FLIGHT):
                nursery.start_soon(asker, CONCURRENT_ASKS // IN_FLIGHT)
        results["asks_per_s"] = CONCURRENT_ASKS / (time.perf_counter() - start)
        node = system._transport
        assert node is not None
        results["payload"] = float(len(node.codec.encode(Kind.TELL, Tick(12345))))  # type: ignore[attr-defined]
    return results


def run() -> None:
    """Run the remote benchmarks and print their table."""
    with PrivateServer() as server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        sink = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._remote_sink", server.url, "bench"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert sink.stdout is not None
            if sink.stdout.readline().strip() != b"ready":
                raise RuntimeError("the sink node did not start")
            remote = trio.run(remote_workloads, server.url)
            payload = b"x" * int(remote["payload"])
            floor_xadd = trio.run(xadd_floor, server.url, payload)
            floor_local = trio.run(local_tell)
        finally:
            sink.send_signal(2)
            sink.wait(timeout=30)
    print_table(
        f"Remote: 2 node processes on one machine, one Redis-compatible server (unix socket), "
        f"{int(remote['payload'])}-byte messages",
        ["workload", "floor", "triactor", "ratio", "target"],
        [
            [
                "tell, msgs/s (floor: in-process tell)",
                floor_local,
                remote["tell"],
                f"{remote['tell'] / floor_local:.3f}x",
                f"{verdict(remote['tell'] >= 100_000)} (>= 100k/s)",
            ],
            [
                "tell, msgs/s (floor: pipelined XADD)",
                floor_xadd,
                remote["tell"],
                f"{remote['tell'] / floor_xadd:.3f}x",
                "",
            ],
            [
                "ask p50, us (1 in flight)",
                "",
                remote["ask_p50_us"],
                "",
                f"{verdict(remote['ask_p50_us'] <= 500)} (<= 500 us)",
            ],
            ["ask p99, us (1 in flight)", "", remote["ask_p99_us"], "", ""],
            [
                f"asks/s ({IN_FLIGHT} in flight)",
                "",
                remote["asks_per_s"],
                "",
                f"{verdict(remote['asks_per_s'] >= 20_000)} (>= 20k/s)",
            ],
        ],
    )
