"""Trees that fail: a root that gives up, an actor that ignores a stop request, and a job
that crashes while the shutdown drains the mailbox."""

from __future__ import annotations

import attrs
import trio

from triactor import Actor, ChildSpec, Supervisor, handler


@attrs.frozen
class Explode:
    pass


@attrs.frozen
class Hang:
    pass


@attrs.frozen
class Job:
    n: int


JOBS = 20


class Crasher(Actor):
    """Crashes right after every start, so its supervisor soon gives up."""

    async def on_start(self) -> None:
        await self.ref.tell(Explode())

    @handler
    async def explode(self, msg: Explode) -> None:
        raise RuntimeError("the crasher exploded")


class Hanger(Actor):
    """Its handler never returns, so a graceful stop waits for its long shutdown_timeout."""

    async def on_start(self) -> None:
        await self.ref.tell(Hang())

    @handler
    async def hang(self, msg: Hang) -> None:
        await trio.sleep_forever()

    async def on_stop(self) -> None:
        print("hanger on_stop ran", flush=True)


gives_up = Supervisor("root", [ChildSpec(Crasher, name="crasher")], max_restarts=2, within=60)

hangs = Supervisor("app", [ChildSpec(Hanger, name="hanger", shutdown_timeout=60.0)])


class Fragile(Actor):
    """Queues JOBS jobs at start; job 0 holds the actor until the shutdown, job 5 raises.

    So job 5 crashes the actor while the graceful shutdown drains its mailbox.
    """

    async def on_start(self) -> None:
        if self.ref.statistics().restarts == 0:  # the restarted incarnation finds them queued
            for n in range(JOBS):
                await self.ref.tell(Job(n))

    @handler
    async def job(self, msg: Job) -> None:
        if msg.n == 0:
            # Polling is the point: nothing else tells an actor that a shutdown has begun.
            while not self.system.statistics().shutting_down:  # noqa: ASYNC110
                await trio.sleep(0.01)
        if msg.n == 5:
            raise ValueError("job 5 is malformed")
        print(f"job {msg.n} done", flush=True)


crashes_while_draining = Supervisor("app", [ChildSpec(Fragile, name="fragile")])

hangs_briefly = Supervisor("app", [ChildSpec(Hanger, name="hanger", shutdown_timeout=0.2)])
