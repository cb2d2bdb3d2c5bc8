"""Actors and mailboxes: the first actor, tell, ask and what goes wrong."""

import attrs
import trio

from triactor import Actor, NoHandler, handler, open_actor_system


@attrs.frozen
class Add:
    amount: int


@attrs.frozen
class Total: ...


@attrs.frozen
class Sleep:
    seconds: float


class Counter(Actor):
    mailbox_capacity = 100  # class-level defaults, overridable per spawn

    def __init__(self, start: int = 0) -> None:
        self.total = start

    async def on_start(self) -> None:
        self.log.info("counting from %s", self.total)

    @handler
    async def add(self, msg: Add) -> None:
        self.total += msg.amount

    @handler
    async def get(self, msg: Total) -> int:
        return self.total

    @handler
    async def sleep(self, msg: Sleep) -> None:
        await trio.sleep(msg.seconds)


async def main() -> None:
    async with open_actor_system() as system:
        counter = await system.spawn(Counter, 5, name="counter")
        await counter.tell(Add(2))  # queued; waits only if the mailbox is full
        assert counter.try_tell(Add(1))  # never waits: False if it would have to
        assert await counter.ask(Total()) == 8  # request and reply

        await counter.tell(Sleep(10))
        try:
            await counter.ask(Total(), timeout=1.0)  # queued behind a 10 s message
        except trio.TooSlowError as exc:
            print(exc)  # names the actor, the message type and the time waited

        try:
            await counter.ask("hello")
        except NoHandler as exc:
            print(exc)  # names the actor, the type, and the types it handles

        assert system.lookup("counter") == counter
        print(counter.statistics())
    # Leaving the block stopped the counter gracefully, after its mailbox drained.


if __name__ == "__main__":
    trio.run(main)
