"""The Redis connection layer against a raw socket on the same private server.

Round trip: ``execute("PING")`` against one task writing PING and reading PONG on a plain
non-blocking socket (the floor under Trio). Pipelining: ``send_nowait`` of XADDs from one task
against the same XADDs pre-encoded and written in 1,000-command chunks by hand, replies parsed
with hiredis. The client's CPU time per command is printed too: on a shared machine it moves
less than the rates. ``python -m benchmarks redis`` (needs a server binary, see
``triactor.remote._server.find_server_binary``).
"""

from __future__ import annotations

import gc
import socket
import time
from typing import Any

import hiredis
import trio

from triactor.remote._redis import RedisConnection, open_connection
from triactor.remote._server import PrivateServer

from ._table import print_table, verdict

ROUND_TRIPS = 20_000
XADDS = 200_000
CHUNK = 1_000
TASKS = 50
PAYLOAD = b"x" * 64


def _xadd(i: int) -> tuple[Any, ...]:
    return ("XADD", "bench:s", "*", "i", i, "d", PAYLOAD)


async def _raw_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect(path)
    await trio.lowlevel.checkpoint()
    return sock


async def _recv_replies(sock: socket.socket, reader: hiredis.Reader, count: int) -> None:
    while count:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        reader.feed(data)
        while reader.gets() is not False:
            count -= 1


async def raw_round_trips(path: str, samples: list[int]) -> None:
    sock = await _raw_socket(path)
    reader = hiredis.Reader()
    ping = hiredis.pack_command(("PING",))
    clock = time.perf_counter_ns
    with sock:
        for _ in range(ROUND_TRIPS):
            start = clock()
            sock.send(ping)
            await _recv_replies(sock, reader, 1)
            samples.append(clock() - start)


async def our_round_trips(url: str, samples: list[int]) -> None:
    async with open_connection(url) as conn:
        clock = time.perf_counter_ns
        for _ in range(ROUND_TRIPS):
            start = clock()
            await conn.execute("PING")
            samples.append(clock() - start)


async def raw_pipeline(path: str) -> float:
    sock = await _raw_socket(path)
    reader = hiredis.Reader()
    with sock:
        start = time.perf_counter()
        for base in range(0, XADDS, CHUNK):
            data = memoryview(b"".join(hiredis.pack_command(_xadd(i)) for i in range(CHUNK)))
            while data:
                try:
                    data = data[sock.send(data) :]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
            # Read what has come so far without waiting: replies overlap the next chunk.
            await _recv_replies(sock, reader, 0) if base else None
        await _recv_replies(sock, reader, XADDS - _drain(reader))
        return time.perf_counter() - start


def _drain(reader: hiredis.Reader) -> int:
    count = 0
    while reader.gets() is not False:
        count += 1
    return count


async def our_pipeline(url: str) -> float:
    async with open_connection(url) as conn:
        start = time.perf_counter()
        for base in range(0, XADDS, CHUNK):
            for i in range(base, base + CHUNK):
                conn.send_nowait(*_xadd(i))
            await trio.lowlevel.checkpoint()
        await conn.execute("PING")  # answered after every XADD before it
        elapsed = time.perf_counter() - start
        assert await conn.execute("XLEN", "bench:s") >= XADDS
        return elapsed


async def our_concurrent(url: str) -> float:
    per_task = ROUND_TRIPS // TASKS * 4

    async def worker(conn: RedisConnection) -> None:
        for _ in range(per_task):
            await conn.execute("INCR", "bench:n")

    async with open_connection(url) as conn:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(TASKS):
                nursery.start_soon(worker, conn)
        return TASKS * per_task / (time.perf_counter() - start)


async def _reset(url: str) -> None:
    async with open_connection(url) as conn:
        await conn.execute("DEL", "bench:s", "bench:n")


def _percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def run() -> None:
    """Run the Redis connection benchmarks on a private server and print their table."""
    with PrivateServer() as server:
        url = server.url
        path = url.removeprefix("unix://")
        raw_samples: list[int] = []
        our_samples: list[int] = []
        gc.collect()
        trio.run(raw_round_trips, path, raw_samples)
        trio.run(our_round_trips, url, our_samples)
        raw_times, our_times, raw_cpu, our_cpu = [], [], [], []
        for _ in range(3):  # interleaved, so that drift on the machine hits both alike
            trio.run(_reset, url)
            cpu = time.process_time()
            raw_times.append(trio.run(raw_pipeline, path))
            raw_cpu.append(time.process_time() - cpu)
            trio.run(_reset, url)
            cpu = time.process_time()
            our_times.append(trio.run(our_pipeline, url))
            our_cpu.append(time.process_time() - cpu)
        trio.run(_reset, url)
        concurrent = max(trio.run(our_concurrent, url) for _ in range(2))
        trio.run(_reset, url)

    raw_p50, our_p50 = _percentile(raw_samples, 0.5), _percentile(our_samples, 0.5)
    raw_p99, our_p99 = _percentile(raw_samples, 0.99), _percentile(our_samples, 0.99)
    raw_rate, our_rate = XADDS / min(raw_times), XADDS / min(our_times)
    rows = [
        (
            f"PING round trip p50, {ROUND_TRIPS:,} sequential (us)",
            raw_p50,
            our_p50,
            f"{our_p50 / raw_p50:.2f}x",
            "< 100 us",
            verdict(our_p50 < 100),
        ),
        ("PING round trip p99 (us)", raw_p99, our_p99, f"{our_p99 / raw_p99:.2f}x", "-", ""),
        (
            f"pipelined XADD from one task, {XADDS:,} (cmd/s)",
            raw_rate,
            our_rate,
            f"{our_rate / raw_rate:.2f}x",
            ">= 200,000/s",
            verdict(our_rate >= 200_000),
        ),
        (
            "  client CPU per XADD, this process only (us)",
            min(raw_cpu) / XADDS * 1e6,
            min(our_cpu) / XADDS * 1e6,
            f"{min(our_cpu) / min(raw_cpu):.2f}x",
            "-",
            "",
        ),
        (f"INCR from {TASKS} tasks at once (cmd/s)", "", concurrent, "", "-", ""),
    ]
    print_table(
        "Redis connection (unix socket, private server): triactor against a raw socket",
        ("workload", "raw socket", "triactor", "ratio", "target", ""),
        rows,
    )


if __name__ == "__main__":
    run()
