"""Supervision: a tree, its strategies, dynamic children and death watch."""

import attrs
import trio

from triactor import (
    Actor,
    Backoff,
    ChildSpec,
    ChildState,
    Restart,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)


@attrs.frozen
class Crash: ...


@attrs.frozen
class Ping: ...


class Worker(Actor):
    @handler
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError(f"{self.name} was told to crash")

    @handler
    async def ping(self, msg: Ping) -> str:
        return f"pong from {self.path}"


tree = Supervisor(
    "root",
    children=[
        ChildSpec(Worker, name="db", restart=Restart.PERMANENT, shutdown_timeout=5.0),
        Supervisor(
            "workers",
            children=[ChildSpec(Worker, name=f"w{n}") for n in range(3)],
            strategy=Strategy.ONE_FOR_ALL,  # a crash of one restarts the three
        ),
        ChildSpec(Worker, name="cache", backoff=Backoff(min=0.1, max=10.0, jitter=0.2)),
    ],
    strategy=Strategy.ONE_FOR_ONE,  # a crash restarts only that child
    max_restarts=3,  # more than 3 restarts within 5 s: the root gives up
    within=5.0,
)


async def main() -> None:
    async with open_actor_system() as system:
        await system.spawn(tree)
        w1 = system.lookup("w1")
        assert await w1.ask(Ping()) == "pong from /root/workers/w1"

        await w1.tell(Crash())
        await trio.sleep(1.0)  # the workers supervisor restarts w0, w1 and w2
        print(await w1.ask(Ping()))  # the same ref reaches the new incarnation
        assert [system.lookup(f"w{n}").statistics().restarts for n in range(3)] == [1, 1, 1]
        assert system.lookup("db").statistics().restarts == 0

        # Dynamic children: started and stopped at run time.
        extra = await system.start_child("root", ChildSpec(Worker, name="extra"))
        for child in await system.which_children("root"):
            print(child.name, child.state.name, "restarts:", child.restarts)
        assert (await system.count_children("root")).running == 4

        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                notice = await system.watch(extra)  # one notice, when it stops for good
                print(notice)

            nursery.start_soon(watch)
            await system.terminate_child("root", "extra")
        assert not extra.is_alive
        states = {child.name: child.state for child in await system.which_children("root")}
        assert states == dict.fromkeys(["db", "workers", "cache"], ChildState.RUNNING)


if __name__ == "__main__":
    trio.run(main)
