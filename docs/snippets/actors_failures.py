"""Actors and mailboxes: blocking code in a plain def handler, and bad input with resume_on."""

import hashlib

import attrs
import trio

from triactor import Actor, DeadLetterReason, handler, open_actor_system


@attrs.frozen
class Digest:
    data: bytes
    rounds: int


@attrs.frozen
class Get:
    key: str


@attrs.frozen
class Put:
    key: str
    value: str


@attrs.frozen
class Hits: ...


class Hasher(Actor):
    @handler
    def digest(self, msg: Digest) -> str:  # plain def: runs in a worker thread
        data = msg.data
        for _ in range(msg.rounds):  # CPU work that would stall the loop in an async def
            data = hashlib.sha256(data).digest()
        return data.hex()


class Cache(Actor):
    resume_on = (KeyError,)  # an unknown key is the caller's mistake: keep the state

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}
        self.hits = 0

    @handler
    async def put(self, msg: Put) -> None:
        self.entries[msg.key] = msg.value

    @handler
    async def get(self, msg: Get) -> str:
        value = self.entries[msg.key]  # KeyError for an unknown key
        self.hits += 1
        return value

    @handler
    async def hit_count(self, msg: Hits) -> int:
        return self.hits


async def main() -> None:
    async with open_actor_system() as system:
        hasher = await system.spawn(Hasher, name="hasher")
        print(await hasher.ask(Digest(b"hello", rounds=10_000)))

        cache = await system.spawn(Cache, name="cache")
        await cache.tell(Put("a", "apple"))
        assert await cache.ask(Get("a")) == "apple"
        try:
            await cache.ask(Get("b"))
        except KeyError as exc:  # the asker gets the exception...
            print("unknown key:", exc)
        await cache.tell(Get("c"))  # ...a tell's failure goes to dead letters
        assert await cache.ask(Hits()) == 1  # ...and the actor kept its state
        assert cache.statistics().restarts == 0 and cache.statistics().failures == 2
        [letter] = system.dead_letters
        assert letter.reason is DeadLetterReason.HANDLER_ERROR


if __name__ == "__main__":
    trio.run(main)
