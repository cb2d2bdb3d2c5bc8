"""Trees that run well: a worker with queued jobs, a tree that finishes by itself, factories."""

from __future__ import annotations

import time

import attrs
import trio
import trio.lowlevel

from triactor import Actor, ChildSpec, Supervisor, handler

JOBS = 20


@attrs.frozen
class Job:
    n: int


@attrs.frozen
class Finish:
    pass


class Worker(Actor):
    """Queues JOBS jobs at start; the first one holds the actor until the shutdown begins.

    So when SIGINT arrives, JOBS - 1 jobs are still queued: a graceful shutdown handles
    them (the mailbox drains) before ``on_stop`` prints the count.
    """

    def __init__(self) -> None:
        self.processed = 0

    async def on_start(self) -> None:
        for n in range(JOBS):
            await self.ref.tell(Job(n))

    @handler
    async def job(self, msg: Job) -> None:
        if msg.n == 0:
            # Polling is the point: nothing else tells an actor that a shutdown has begun.
            while not self.system.statistics().shutting_down:  # noqa: ASYNC110
                await trio.sleep(0.01)
        self.processed += 1

    async def on_stop(self) -> None:
        print(f"worker stopped: processed {self.processed} of {JOBS} jobs", flush=True)


class Finisher(Actor):
    """Does its work, then shuts the whole system down: a run that ends by itself."""

    async def on_start(self) -> None:
        await self.ref.tell(Finish())

    @handler
    async def finish(self, msg: Finish) -> None:
        print("work done", flush=True)
        self.system.begin_shutdown()


class SlowStart(Actor):
    """Takes far too long to start: a signal during startup must cut it short."""

    async def on_start(self) -> None:
        print("starting slowly", flush=True)
        await trio.sleep(60)


def tree() -> Supervisor:
    """A worker with queued jobs, running until a signal."""
    return Supervisor("app", [ChildSpec(Worker, name="worker")])


def finite_tree() -> Supervisor:
    """A tree that stops by itself."""
    return Supervisor("app", [ChildSpec(Finisher, name="finisher")])


async def async_finite_tree() -> Supervisor:
    """An async factory of the tree that stops by itself."""
    await trio.lowlevel.checkpoint()
    return finite_tree()


slow_start = Supervisor("app", [ChildSpec(SlowStart, name="slow")])

NOT_A_TREE = 42


def needs_arguments(size: int) -> Supervisor:
    return Supervisor("app", [ChildSpec(Worker, name=f"worker-{size}")])


def returns_a_dict() -> dict[str, str]:
    return {"not": "a tree"}


def raises() -> Supervisor:
    raise RuntimeError("the factory failed")


class Namespace:
    """Holds a tree one attribute deeper (``apps:Namespace.tree``)."""

    tree = Supervisor("nested", [ChildSpec(Finisher, name="finisher")])


class Dozer(Actor):
    """Blocks the loop once with a synchronous sleep, then stops the system."""

    async def on_start(self) -> None:
        await self.ref.tell(Finish())

    @handler
    async def finish(self, msg: Finish) -> None:
        time.sleep(0.4)  # noqa: ASYNC251 - the accidental blocking call the launcher reports
        self.system.begin_shutdown()


def blocking_tree() -> Supervisor:
    """A tree whose actor blocks the event loop."""
    return Supervisor("app", [ChildSpec(Dozer, name="dozer")])
