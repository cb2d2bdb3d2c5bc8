"""Threads: a plain def handler sends on with try_tell, or waits for room via from_thread."""

import attrs
import trio

from triactor import Actor, handler, open_actor_system


@attrs.frozen
class Crunch:
    n: int


@attrs.frozen
class Result:
    value: int


@attrs.frozen
class Results: ...


class Sink(Actor):
    def __init__(self) -> None:
        self.values: list[int] = []

    @handler
    async def result(self, msg: Result) -> None:
        self.values.append(msg.value)

    @handler
    async def results(self, msg: Results) -> list[int]:
        return self.values


class Cruncher(Actor):
    async def on_start(self) -> None:
        self.sink = self.system.lookup("sink")

    @handler
    def crunch(self, msg: Crunch) -> None:  # runs in a worker thread
        value = sum(i * i for i in range(msg.n))
        if not self.sink.try_tell(Result(value)):  # safe from any thread; never waits
            trio.from_thread.run(self.sink.tell, Result(value))  # waits for room


async def main() -> None:
    async with open_actor_system() as system:
        sink = await system.spawn(Sink, name="sink")
        cruncher = await system.spawn(Cruncher, name="cruncher")
        for n in (10, 100, 1000):
            await cruncher.ask(Crunch(n))  # returns once the handler (and its tell) is done
        assert await sink.ask(Results()) == [285, 328350, 332833500]


if __name__ == "__main__":
    trio.run(main)
