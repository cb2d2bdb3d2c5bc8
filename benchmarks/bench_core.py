"""The core message-path benchmarks: tell, ask, spawn+stop and fan-out against raw Trio.

Each workload runs twice in the same process and the same run: once written directly on Trio
(memory channels and tasks, the floor) and once on triactor. The table prints the ratio and
whether it meets the project's target (listed in docs/performance.md).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import attrs
import trio

from triactor import Actor, handler, open_actor_system
from triactor.diagnostics import detect_blocking

from ._table import print_table, verdict

TELL_MESSAGES = 200_000
ASK_ROUND_TRIPS = 20_000
SPAWN_ACTORS = 10_000
FANOUT_WORKERS = 8
FANOUT_ITEMS = 400
FANOUT_IO_SECONDS = 0.010
CAPACITY = 1000


@attrs.frozen
class Add:
    amount: int


@attrs.frozen
class Total:
    pass


@attrs.frozen
class Fetch:
    item: int


class Counter(Actor):
    mailbox_capacity = CAPACITY

    def __init__(self) -> None:
        self.total = 0

    @handler
    async def add(self, msg: Add) -> None:
        self.total += msg.amount

    @handler
    async def get(self, msg: Total) -> int:
        return self.total


class Fetcher(Actor):
    def __init__(self) -> None:
        self.done = 0

    @handler
    async def fetch(self, msg: Fetch) -> None:
        await trio.sleep(FANOUT_IO_SECONDS)
        self.done += 1

    @handler
    async def count(self, msg: Total) -> int:
        return self.done


def _timed(
    fn: Callable[[], Awaitable[object]], clock: Callable[[], float] = time.perf_counter
) -> float:
    gc.collect()
    start = clock()
    trio.run(fn)
    return clock() - start


# -- tell throughput -----------------------------------------------------------------------------


async def raw_tell() -> None:
    send, receive = trio.open_memory_channel[Add](CAPACITY)
    total = 0

    async def consume() -> None:
        nonlocal total
        async for msg in receive:
            total += msg.amount

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        async with send:
            message = Add(1)
            for _ in range(TELL_MESSAGES):
                await send.send(message)
    assert total == TELL_MESSAGES


async def triactor_tell() -> None:
    async with open_actor_system() as system:
        counter = await system.spawn(Counter)
        message = Add(1)
        for _ in range(TELL_MESSAGES):
            await counter.tell(message)
        assert await counter.ask(Total()) == TELL_MESSAGES


async def triactor_tell_detected() -> None:
    """The tell workload with the blocking-call detector watching the run."""
    async with detect_blocking(0.1, mode="record") as detector:
        await triactor_tell()
    assert not detector.reports, detector.reports


# -- ask round trip ------------------------------------------------------------------------------


async def raw_ask(samples: list[int]) -> None:
    request_send, request_receive = trio.open_memory_channel[Total](1)
    reply_send, reply_receive = trio.open_memory_channel[int](1)

    async def serve() -> None:
        total = 0
        async for _ in request_receive:
            await reply_send.send(total)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        message = Total()
        clock = time.perf_counter_ns
        for _ in range(ASK_ROUND_TRIPS):
            start = clock()
            await request_send.send(message)
            await reply_receive.receive()
            samples.append(clock() - start)
        await request_send.aclose()


async def triactor_ask(samples: list[int]) -> None:
    async with open_actor_system() as system:
        counter = await system.spawn(Counter)
        message = Total()
        clock = time.perf_counter_ns
        for _ in range(ASK_ROUND_TRIPS):
            start = clock()
            await counter.ask(message)
            samples.append(clock() - start)


def _percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


# -- spawn + stop --------------------------------------------------------------------------------


async def _raw_worker(receive: trio.MemoryReceiveChannel[Add]) -> None:
    async for _ in receive:
        pass


async def raw_spawn(hold: Callable[[], None] | None = None) -> None:
    async with trio.open_nursery() as nursery:
        senders = []
        for _ in range(SPAWN_ACTORS):
            send, receive = trio.open_memory_channel[Add](CAPACITY)
            nursery.start_soon(_raw_worker, receive)
            senders.append(send)
        await trio.lowlevel.checkpoint()
        if hold is not None:
            hold()
        for send in reversed(senders):
            await send.aclose()


async def triactor_spawn(hold: Callable[[], None] | None = None) -> None:
    async with open_actor_system() as system:
        for _ in range(SPAWN_ACTORS):
            await system.spawn(Counter)
        await trio.lowlevel.checkpoint()
        if hold is not None:
            hold()


def _memory_per_actor(fn: Callable[..., Awaitable[None]]) -> float:
    """Bytes allocated and still held per actor at the moment all actors are running."""
    held: list[int] = []
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    trio.run(fn, lambda: held.append(tracemalloc.get_traced_memory()[0] - base))
    tracemalloc.stop()
    return held[0] / SPAWN_ACTORS


# -- fan-out -------------------------------------------------------------------------------------


async def raw_fanout() -> None:
    """The same fan-out on plain Trio: 8 tasks, each reading its own memory channel."""

    async def fetcher(receive: trio.MemoryReceiveChannel[Fetch]) -> None:
        async for _ in receive:
            await trio.sleep(FANOUT_IO_SECONDS)

    async with trio.open_nursery() as nursery:
        senders = []
        for _ in range(FANOUT_WORKERS):
            send, receive = trio.open_memory_channel[Fetch](CAPACITY)
            nursery.start_soon(fetcher, receive)
            senders.append(send)
        for item in range(FANOUT_ITEMS):
            await senders[item % FANOUT_WORKERS].send(Fetch(item))
        for send in senders:
            await send.aclose()


async def triactor_fanout() -> None:
    async with open_actor_system() as system:
        workers = [await system.spawn(Fetcher) for _ in range(FANOUT_WORKERS)]
        for item in range(FANOUT_ITEMS):
            await workers[item % FANOUT_WORKERS].tell(Fetch(item))
        done = [await worker.ask(Total()) for worker in workers]
        assert sum(done) == FANOUT_ITEMS


def run() -> None:
    """Run the core benchmarks and print their table (best of 2-3 runs each, wall clock)."""
    raw_tell_s = min(_timed(raw_tell) for _ in range(2))
    # Interleaved, so that drift on the machine hits both alike.
    our_tell_s = min(_timed(triactor_tell) for _ in range(3))
    # The detector's overhead: CPU time of the process (the watchdog thread included), in
    # interleaved pairs, so that other load on the machine and drift hit both sides alike.
    cpu_pairs = [
        (
            _timed(triactor_tell, time.process_time),
            _timed(triactor_tell_detected, time.process_time),
        )
        for _ in range(7)
    ]
    overheads = sorted(detected / plain for plain, detected in cpu_pairs)
    detected_tell_s = our_tell_s * overheads[len(overheads) // 2]
    tell_ratio = raw_tell_s / our_tell_s
    detector_overhead = detected_tell_s / our_tell_s - 1

    raw_samples: list[int] = []
    our_samples: list[int] = []
    trio.run(raw_ask, raw_samples)
    trio.run(triactor_ask, our_samples)
    raw_p50, raw_p99 = _percentile(raw_samples, 0.5), _percentile(raw_samples, 0.99)
    our_p50, our_p99 = _percentile(our_samples, 0.5), _percentile(our_samples, 0.99)

    raw_spawn_s = min(_timed(raw_spawn) for _ in range(2))
    our_spawn_s = min(_timed(triactor_spawn) for _ in range(2))
    raw_memory = _memory_per_actor(raw_spawn)
    our_memory = _memory_per_actor(triactor_spawn)

    raw_fanout_s = min(_timed(raw_fanout) for _ in range(3))
    fanout_s = min(_timed(triactor_fanout) for _ in range(3))
    ideal_s = FANOUT_ITEMS / FANOUT_WORKERS * FANOUT_IO_SECONDS

    rows = [
        (
            f"tell throughput, {TELL_MESSAGES:,} msgs (msg/s)",
            TELL_MESSAGES / raw_tell_s,
            TELL_MESSAGES / our_tell_s,
            f"{tell_ratio:.2f}x",
            ">= 5x",
            verdict(tell_ratio >= 5),
        ),
        (
            "  same, blocking detector on (msg/s; median CPU overhead)",
            "",
            TELL_MESSAGES / detected_tell_s,
            f"{detector_overhead:+.1%}",
            "< 10%",
            verdict(detector_overhead < 0.10),
        ),
        (
            f"ask round trip p50, {ASK_ROUND_TRIPS:,} sequential (us)",
            raw_p50,
            our_p50,
            f"{our_p50 / raw_p50:.2f}x",
            "<= 0.8x",
            verdict(our_p50 / raw_p50 <= 0.8),
        ),
        ("ask round trip p99 (us)", raw_p99, our_p99, f"{our_p99 / raw_p99:.2f}x", "-", ""),
        (
            f"spawn + stop {SPAWN_ACTORS:,} actors (actors/s)",
            SPAWN_ACTORS / raw_spawn_s,
            SPAWN_ACTORS / our_spawn_s,
            f"{raw_spawn_s / our_spawn_s:.2f}x",
            ">= 0.5x",
            verdict(raw_spawn_s / our_spawn_s >= 0.5),
        ),
        (
            "memory per actor (bytes)",
            raw_memory,
            our_memory,
            f"{our_memory / raw_memory:.2f}x",
            "<= 2x",
            verdict(our_memory / raw_memory <= 2),
        ),
        (
            f"fan-out {FANOUT_WORKERS} workers x {FANOUT_ITEMS} items of 10 ms (s)",
            raw_fanout_s,
            fanout_s,
            f"{fanout_s / ideal_s:.3f}x ideal",
            "<= 1.05x ideal",
            verdict(fanout_s / ideal_s <= 1.05),
        ),
        (
            "  (raw Trio on the same fan-out, against the ideal 0.5 s)",
            "",
            "",
            f"{raw_fanout_s / ideal_s:.3f}x ideal",
            "-",
            "",
        ),
    ]
    print_table(
        "Core message path: triactor against raw Trio (floor), same process, same run",
        ("workload", "raw trio", "triactor", "ratio", "target", ""),
        rows,
    )


if __name__ == "__main__":
    run()
