"""The CPU path: ``run_in_process`` runs in another process, is cancellable, carries errors.

These tests start real worker processes (a few hundred milliseconds for the first one), so
they run on the real clock; nothing here asserts a duration.
"""

from __future__ import annotations

import os
import threading
import traceback
from pathlib import Path

import attrs
import pytest
import trio
from cpu_helpers import fail, pid_and_square, report_pid_then_hang

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler, run_in_process

# A generous guard against a hang; never reached when the code works.
GUARD = 60


@attrs.frozen
class Square:
    n: int


@attrs.frozen
class Fail:
    reason: str


class Cruncher(Actor):
    """Runs its CPU work in worker processes, two at a time."""

    max_concurrency = 2

    @handler
    async def square(self, msg: Square) -> tuple[int, int]:
        return await run_in_process(pid_and_square, msg.n)

    @handler
    async def fail(self, msg: Fail) -> None:
        await run_in_process(fail, msg.reason)


class Model:
    """Holds a lock: its bound methods cannot be pickled, like an actor's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def predict(self, n: int) -> int:
        return n


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _pid_of_hanging_job(fifo: Path) -> int:
    """Wait until the job has written its worker's pid into ``fifo`` and return it."""

    def read() -> str:
        with open(fifo) as pipe:  # blocks until the worker opens it for writing
            return pipe.read()

    return int(await trio.to_thread.run_sync(read))


async def test_runs_in_another_process_from_a_handler(system: triactor.ActorSystem) -> None:
    with trio.fail_after(GUARD):
        cruncher = await system.spawn(Cruncher)
        results = [await cruncher.ask(Square(n)) for n in (2, 3)]
    assert [square for _, square in results] == [4, 9]
    assert all(pid != os.getpid() for pid, _ in results)


async def test_carries_the_exception_into_the_handler_and_the_asker(
    system: triactor.ActorSystem,
) -> None:
    with trio.fail_after(GUARD):
        await system.spawn(Supervisor("root", [ChildSpec(Cruncher, name="cruncher")]))
        cruncher = system.lookup("cruncher")
        with pytest.raises(ValueError, match="bad input 7") as caught:
            await cruncher.ask(Fail("bad input 7"))
        assert (await cruncher.ask(Square(4)))[1] == 16  # restarted by its supervisor
    notes = caught.value.__notes__
    assert "in triactor.run_in_process(fail, ...)" in notes
    assert "raised in actor '/root/cruncher' while handling Fail" in notes
    # The worker's own frame is in the traceback: the line that raised, in the other process.
    text = "".join(traceback.format_exception(caught.value))
    assert "cpu_helpers.py" in text and "raise ValueError(reason)" in text


async def test_cancellation_kills_the_worker(tmp_path: Path) -> None:
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    finished = False
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            job_scope = trio.CancelScope()

            async def job() -> None:
                nonlocal finished
                with job_scope:
                    await run_in_process(report_pid_then_hang, str(fifo))
                    finished = True

            nursery.start_soon(job)
            pid = await _pid_of_hanging_job(fifo)
            assert pid != os.getpid()
            assert not _process_is_gone(pid)
            job_scope.cancel()
    assert job_scope.cancelled_caught and not finished
    assert _process_is_gone(pid)  # killed and reaped by the time the cancelled call returned
    with trio.fail_after(GUARD):
        assert (await run_in_process(pid_and_square, 5))[1] == 25  # a fresh worker serves


async def test_stopping_an_actor_past_its_timeout_kills_its_job(tmp_path: Path) -> None:
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)

    @attrs.frozen
    class Hang:
        fifo: str

    class Hanger(Actor):
        shutdown_timeout = 0.1

        @handler
        async def hang(self, msg: Hang) -> None:
            await run_in_process(report_pid_then_hang, msg.fifo)

    with trio.fail_after(GUARD):
        async with triactor.open_actor_system() as system:
            hanger = await system.spawn(Hanger)
            await hanger.tell(Hang(str(fifo)))
            pid = await _pid_of_hanging_job(fifo)
        # Leaving the block stops the actor: its handler never returns, so it is cancelled at
        # its shutdown deadline, and the job with it.
    assert _process_is_gone(pid)
    (letter,) = list(system.dead_letters)
    assert letter.message == Hang(str(fifo))


async def test_refuses_what_cannot_reach_a_worker() -> None:
    def nested(n: int) -> int:
        return n

    for fn, shown in ((lambda n: n, "<lambda>"), (nested, "nested"), (Model().predict, "predict")):
        with pytest.raises(TypeError, match=r"cannot send .*module level") as caught:
            await run_in_process(fn, 1)
        assert shown in str(caught.value)
    with pytest.raises(TypeError, match="takes a function"):
        await run_in_process(42)  # type: ignore[arg-type]
