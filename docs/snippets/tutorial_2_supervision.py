"""Tutorial, step 2: a parser that crashes on bad input, restarted by its supervisor."""

import attrs
import trio

from triactor import (
    Actor,
    Backoff,
    ChildSpec,
    DeadLetterReason,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)


@attrs.frozen
class Document:
    id: int
    corrupt: bool = False


@attrs.frozen
class Flush:
    """Answered once every message sent before it has been handled."""


@attrs.frozen
class Collected:
    """Asks the sink which documents reached it."""


class Parser(Actor):
    """Flaky: a corrupt document crashes it."""

    async def on_start(self) -> None:
        self.sink = self.system.lookup("sink")

    @handler
    async def parse(self, doc: Document) -> None:
        if doc.corrupt:
            raise ValueError(f"document {doc.id} is corrupt")
        await self.sink.tell(doc)

    @handler
    async def flush(self, msg: Flush) -> None:
        pass


class Sink(Actor):
    def __init__(self) -> None:
        self.ids: list[int] = []

    @handler
    async def collect(self, doc: Document) -> None:
        self.ids.append(doc.id)

    @handler
    async def collected(self, msg: Collected) -> list[int]:
        return self.ids


tree = Supervisor(
    "pipeline",
    [
        ChildSpec(Sink, name="sink"),  # started first: the parser looks it up
        ChildSpec(Parser, name="parser", backoff=Backoff(min=0.01, max=1.0)),
    ],
    strategy=Strategy.ONE_FOR_ONE,
    max_restarts=5,  # more than 5 restarts within 10 s: the supervisor gives up
    within=10.0,
)


async def main() -> None:
    async with open_actor_system() as system:
        await system.spawn(tree)
        parser, sink = system.lookup("parser"), system.lookup("sink")
        for n in range(6):
            await parser.tell(Document(n, corrupt=n == 2))
        await parser.ask(Flush())  # queued behind the documents: they are all handled

        print("reached the sink:", await sink.ask(Collected()))
        print("parser restarts:", parser.statistics().restarts)
        for letter in system.dead_letters:
            print("dead letter:", letter.message, letter.reason.name)

        assert await sink.ask(Collected()) == [0, 1, 3, 4, 5]
        assert parser.statistics().restarts == 1
        assert [letter.reason for letter in system.dead_letters] == [DeadLetterReason.CRASHED]


if __name__ == "__main__":
    trio.run(main)
