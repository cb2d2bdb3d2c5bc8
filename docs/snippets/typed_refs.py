"""Typed refs: declare what an actor takes and returns; mypy checks the senders."""

import attrs
import trio

import triactor
from triactor import Actor, ActorRef, handler, open_actor_system


@attrs.frozen
class Fetch:
    url: str


@attrs.frozen
class Found:
    url: str
    size: int


class Fetcher(Actor[Fetch, Found]):  # several types: Actor[Fetch | Flush, Found | None]
    @handler
    async def fetch(self, msg: Fetch) -> Found:
        await trio.sleep(0.1)
        return Found(msg.url, len(msg.url))


async def main() -> None:
    async with open_actor_system() as system:
        fetcher = await system.spawn(Fetcher, name="fetcher")  # ActorRef[Fetch, Found]
        found = await fetcher.ask(Fetch("https://example.org"))  # Found, for mypy too
        assert found.size == 19
        # await fetcher.tell("hello")  -> mypy: incompatible type "str"; expected "Fetch"

        urls = ["a", "bb", "ccc"]
        results = await triactor.ask_all([(fetcher, Fetch(u)) for u in urls])  # list[Found]
        assert [r.size for r in results] == [1, 2, 3]

        by_name: ActorRef[Fetch, Found] = system.lookup("fetcher")  # typed by annotation
        assert by_name == fetcher


if __name__ == "__main__":
    trio.run(main)
