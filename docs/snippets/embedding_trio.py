"""Running and embedding: a tree inside your own Trio program."""

import functools

import trio

from examples.counter import Add, Total, tree
from triactor import open_actor_system
from triactor.launcher import run_tree


async def main() -> None:
    # The actors are tasks of this block; leaving it stops them gracefully.
    async with open_actor_system() as system:
        await system.spawn(tree())
        counter = system.lookup("counter")
        await counter.tell(Add(2))
        assert await counter.ask(Total()) == 2

    # The launcher's behaviour (shutdown deadline, RunResult) without its signal handling.
    async with trio.open_nursery() as nursery:
        start = functools.partial(run_tree, handle_signals=False, shutdown_timeout=10.0)
        running = await nursery.start(start, tree())
        await running.system.lookup("counter").tell(Add(5))
        running.request_stop("my program")
    result = running.result()
    print(result)
    assert result.clean and result.stopped_by == "my program"


if __name__ == "__main__":
    trio.run(main)
