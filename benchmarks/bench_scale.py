"""Scaling out a CPU-bound stage: one core against the CPU path and worker processes.

The workload is the article's CPU-heavy agent: a stage whose every message costs about 20 ms of
pure-Python work (calibrated on this machine at the start), fed 200 messages. Each way of
running the stage is a :class:`Variant`; each runs in its own ``trio.run``, with a probe task
beside it that sleeps 1 ms at a time and records how late the loop wakes it up. The table
prints each variant's time, its speedup over the one-core baseline, and the loop's wake-up lag
while it ran (lag is what every other actor in the process feels).

The worker-processes row runs ``triactor run benchmarks._scale_workers:tree --workers 2`` on a
private server, started (and warmed up) before the rounds, as the CPU path's worker processes
are: this process sends the jobs to the exported ``stage`` and counts the done reports.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import trio

import triactor
from triactor import (
    Actor,
    ActorRef,
    ActorSystem,
    Router,
    Routing,
    handler,
    open_actor_system,
    run_in_process,
)
from triactor.remote._server import PrivateServer

from ._scale_workers import Done, Job, Stage, crunch
from ._table import print_table, verdict

MESSAGES = 200
MESSAGE_SECONDS = 0.020
PROBE_INTERVAL = 0.001
SPEEDUP_TARGET = 1.7
LAG_P99_TARGET_MS = 5.0
ROUNDS = 2


def calibrate(seconds: float = MESSAGE_SECONDS) -> int:
    """The number of ``crunch`` rounds that takes about ``seconds`` here (best of 5)."""
    probe = 200_000
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        crunch(probe)
        best = min(best, time.perf_counter() - start)
    return max(1, round(probe * seconds / best))


@attrs.frozen
class Workload:
    """What a variant must do: handle ``messages`` messages of ``crunch(rounds)`` each."""

    messages: int
    rounds: int


@attrs.frozen
class Crunch:
    rounds: int


@attrs.frozen
class Variant:
    """One way to run the stage, as a row of the table.

    Attributes:
        label: the row's name.
        run: handles every message of the workload; returns when all are done.
        parallel: whether the row must reach the speedup and lag targets.
        uses_processes: whether to start the worker processes before timing (their start-up,
            paid once per program, is not part of a stage's throughput).
    """

    label: str
    run: Callable[[Workload], Awaitable[None]]
    parallel: bool = False
    uses_processes: bool = False


# -- the stage's actors --------------------------------------------------------------------------


class _Countdown:
    """Sets ``done`` when ``remaining`` messages have been handled (shared by routees)."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.done = trio.Event()

    def one_done(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class ThreadStage(Actor):
    """The stage as users write CPU work without the CPU path: a plain def, in a thread."""

    def __init__(self, countdown: _Countdown) -> None:
        self.countdown = countdown

    @handler
    def crunch(self, msg: Crunch) -> None:
        crunch(msg.rounds)
        trio.from_thread.run_sync(self.countdown.one_done)


class ProcessStage(Actor):
    """The stage on the CPU path: each message's work runs in a worker process."""

    def __init__(self, countdown: _Countdown) -> None:
        self.countdown = countdown

    @handler
    async def crunch(self, msg: Crunch) -> None:
        await run_in_process(crunch, msg.rounds)
        self.countdown.one_done()


async def _drive(
    work: Workload, spawn: Callable[[ActorSystem, _Countdown], Awaitable[ActorRef]]
) -> None:
    """Spawn the stage, tell it every message (waiting when it is full), wait for the last."""
    countdown = _Countdown(work.messages)
    async with open_actor_system() as system:
        stage = await spawn(system, countdown)
        message = Crunch(work.rounds)
        for _ in range(work.messages):
            await stage.tell(message)
        await countdown.done.wait()


async def one_core(work: Workload) -> None:
    """One actor with a plain def handler: the work runs in a thread, one message at a time."""
    await _drive(work, lambda system, countdown: system.spawn(ThreadStage, countdown))


async def two_threads(work: Workload) -> None:
    """A router of two plain def actors: two threads, which share one GIL."""
    await _drive(
        work,
        lambda system, countdown: system.spawn(
            Router("stage", ThreadStage, 2, routing=Routing.ROUND_ROBIN, args=(countdown,))
        ),
    )


async def one_actor_on_processes(work: Workload) -> None:
    """One actor on the CPU path, handling two messages at a time (one per core)."""
    await _drive(
        work,
        lambda system, countdown: system.spawn(ProcessStage, countdown, max_concurrency=2),
    )


async def router_on_processes(work: Workload) -> None:
    """A least-busy router of two actors on the CPU path."""
    await _drive(
        work,
        lambda system, countdown: system.spawn(Router("stage", ProcessStage, 2, args=(countdown,))),
    )


class _DoneCounter(Actor):
    """Counts the jobs the worker processes report done (hosted in this process)."""

    def __init__(self, countdown: _Countdown) -> None:
        self.countdown = countdown

    @handler
    async def done(self, msg: Done) -> None:
        self.countdown.one_done()


class _WorkerProcesses:
    """``triactor run benchmarks._scale_workers:tree --workers 2`` on a private server, started
    before the rounds (like the CPU path's worker processes) and stopped after them."""

    def __init__(self) -> None:
        self.server: PrivateServer | None = None
        self.launcher: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.server = PrivateServer()
        self.server.start()
        self.launcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triactor.launcher",
                "run",
                "benchmarks._scale_workers:tree",
                "--workers",
                "2",
                "--cluster",
                self.server.url,
                "--cluster-name",
                "scale",
                "--blocking-threshold",
                "0",
                "--log-level",
                "WARNING",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.DEVNULL,
        )
        return self.server.url

    def stop(self) -> None:
        if self.launcher is not None:
            self.launcher.send_signal(signal.SIGINT)
            self.launcher.wait(timeout=60)
        if self.server is not None:
            self.server.stop()


_WORKERS = _WorkerProcesses()


async def worker_processes(work: Workload) -> None:
    """Two worker processes (``--workers 2``) share the stage's name as competing consumers."""
    assert _WORKERS.server is not None
    countdown = _Countdown(work.messages)
    cluster = triactor.Cluster(_WORKERS.server.url, name="scale", node="bench")
    async with open_actor_system(cluster=cluster) as system:
        await system.spawn(_DoneCounter, countdown, name="scale-done", export=True)
        stage = system.remote("stage", Stage)
        job = Job(work.rounds)
        for _ in range(work.messages):
            await stage.tell(job)
        await countdown.done.wait()


async def _workers_ready() -> None:
    """Wait until both workers answer (their start-up is not part of the stage's time)."""
    assert _WORKERS.server is not None
    cluster = triactor.Cluster(_WORKERS.server.url, name="scale", node="bench-warmup")
    countdown = _Countdown(8)
    with trio.fail_after(60):
        async with open_actor_system(cluster=cluster) as system:
            await system.spawn(_DoneCounter, countdown, name="scale-done", export=True)
            stage = system.remote("stage", Stage)
            for _ in range(8):
                await stage.tell(Job(1))
            await countdown.done.wait()


async def idle(work: Workload) -> None:
    """Nothing but the probe, for a second: the loop's own wake-up lag on this machine."""
    await trio.sleep(1.0)


#: The rows, in order; ``one_core`` is the baseline of the speedups.
VARIANTS: list[Variant] = [
    Variant("idle loop (the probe alone, 1 s)", idle),
    Variant("1 core: one actor, plain def handler (a thread)", one_core),
    Variant("2 threads: router of 2 plain def actors", two_threads),
    Variant(
        "CPU path: one actor, run_in_process, max_concurrency=2",
        one_actor_on_processes,
        parallel=True,
        uses_processes=True,
    ),
    Variant(
        "CPU path: router of 2 actors, run_in_process",
        router_on_processes,
        parallel=True,
        uses_processes=True,
    ),
    Variant("--workers 2: two processes, one exported name", worker_processes, parallel=True),
]


# -- measuring -----------------------------------------------------------------------------------


@attrs.frozen
class Result:
    seconds: float
    lag_p50_ms: float
    lag_p99_ms: float


async def _warm_up_workers(count: int = 2) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(run_in_process, crunch, 1)


async def _measure(variant: Variant, work: Workload) -> Result:
    if variant.uses_processes:
        await _warm_up_workers()
    lags: list[float] = []

    async def probe(task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        clock = time.perf_counter
        while True:
            before = clock()
            await trio.sleep(PROBE_INTERVAL)
            lags.append(clock() - before - PROBE_INTERVAL)

    async with trio.open_nursery() as nursery:
        await nursery.start(probe)
        start = time.perf_counter()
        await variant.run(work)
        seconds = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    lags.sort()
    return Result(
        seconds,
        lags[len(lags) // 2] * 1000,
        lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000,
    )


def run() -> None:
    """Run every variant over the same workload and print the table.

    The variants run in turn, ``ROUNDS`` times over, so that a change of load on the machine
    hits them alike; each row shows its fastest round (and that round's lag).
    """
    work = Workload(MESSAGES, calibrate())
    best: dict[int, Result] = {}
    _WORKERS.start()
    try:
        trio.run(_workers_ready)
        for _ in range(ROUNDS):
            for index, variant in enumerate(VARIANTS):
                result = trio.run(_measure, variant, work)
                if index not in best or result.seconds < best[index].seconds:
                    best[index] = result
    finally:
        _WORKERS.stop()
    results = [(variant, best[index]) for index, variant in enumerate(VARIANTS)]
    baseline = next(result for variant, result in results if variant.run is one_core)
    rows = []
    for variant, result in results:
        working = variant.run is not idle
        speedup = baseline.seconds / result.seconds if working else None
        met = ""
        target = "-"
        if variant.parallel:
            target = f">= {SPEEDUP_TARGET}x, p99 < {LAG_P99_TARGET_MS:g} ms"
            met = verdict(
                speedup is not None
                and speedup >= SPEEDUP_TARGET
                and result.lag_p99_ms < LAG_P99_TARGET_MS
            )
        rows.append(
            (
                variant.label,
                result.seconds if working else "",
                f"{speedup:.2f}x" if speedup is not None else "",
                result.lag_p50_ms,
                result.lag_p99_ms,
                target,
                met,
            )
        )
    print_table(
        f"Scale-out: a CPU-bound stage, {MESSAGES} messages of ~{MESSAGE_SECONDS * 1000:g} ms "
        f"pure-Python work each, on this machine's {_cores()} cores (best of {ROUNDS} rounds; "
        "worker processes started beforehand)",
        ("stage", "seconds", "speedup", "lag p50 (ms)", "lag p99 (ms)", "target", ""),
        rows,
    )


def _cores() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    run()
