"""Diagnostics: what is every actor doing, ask cycles, and metrics."""

import attrs
import trio

from triactor import Actor, ActorRef, AskCycleError, PriorityPool, handler, open_actor_system
from triactor.diagnostics import format_snapshot, render_metrics


@attrs.frozen
class Work:
    seconds: float


@attrs.frozen
class Question:
    other: ActorRef | None = None


class Busy(Actor):
    @handler
    async def work(self, msg: Work) -> None:
        await trio.sleep(msg.seconds)  # a handler stuck on a slow call


class Polite(Actor):
    resume_on = (AskCycleError,)  # a refused ask fails the message, not the actor

    @handler
    async def question(self, msg: Question) -> str:
        if msg.other is None:
            return "an answer"
        return await msg.other.ask(Question(self.ref))  # asks back: a cycle


async def main() -> None:
    async with open_actor_system() as system:
        busy = await system.spawn(Busy, name="busy")
        await busy.tell(Work(12))
        await trio.sleep(10)

        snapshots = system.snapshot(stacks_older_than=5.0)
        print(format_snapshot(snapshots))  # state, depth, counts; the await stack of busy
        [snap] = [s for s in snapshots if s.path == "/busy"]
        assert snap.state == "processing" and snap.current_message_type == "Work"
        assert snap.busy_for >= 10 and snap.await_stack

        a = await system.spawn(Polite, name="a")
        b = await system.spawn(Polite, name="b")
        try:
            await a.ask(Question(b))  # a asks b, which asks a: refused at once
        except AskCycleError as exc:
            print(exc)
            assert exc.cycle[0] == exc.cycle[-1] == "/a"

        pool = PriorityPool(2, classes={"high": 0.0, "low": 0.2})
        text = render_metrics(system, pools={"api": pool})  # Prometheus text format
        print("\n".join(line for line in text.splitlines() if "/busy" in line))


if __name__ == "__main__":
    trio.run(main)
