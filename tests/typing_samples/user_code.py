"""A small typed user program: mypy (strict) must flag exactly the lines marked as errors.

Checked by tests/test_typing.py; not collected by pytest, not run.
"""

from __future__ import annotations

import attrs

import triactor
from triactor import Actor, ActorRef, ActorSystem, handler


@attrs.frozen
class Fetch:
    url: str


@attrs.frozen
class Found:
    url: str
    size: int


@attrs.frozen
class Flush:
    pass


class Fetcher(Actor[Fetch, Found]):
    @handler
    async def fetch(self, msg: Fetch) -> Found:
        return Found(msg.url, 1)


class Untyped(Actor):
    @handler
    async def fetch(self, msg: Fetch) -> Found:
        return Found(msg.url, 2)


async def main(system: ActorSystem) -> None:
    fetcher = await system.spawn(Fetcher, name="fetcher")
    found: Found = await fetcher.ask(Fetch("a"))
    size: int = (await fetcher.ask(Fetch("b"))).size
    await fetcher.tell(Fetch("c"))
    fetcher.try_tell(Fetch("d"))
    results: list[Found] = await triactor.ask_all([(fetcher, Fetch(u)) for u in "xy"])

    await fetcher.tell(Flush())  # error: wrong message type
    fetcher.try_tell("a url")  # error: wrong message type
    await fetcher.ask(Flush())  # error: wrong message type
    text: str = await fetcher.ask(Fetch("e"))  # error: wrong reply type
    print((await fetcher.ask(Fetch("f"))).missing)  # error: no such attribute on the reply
    sizes: list[int] = await triactor.ask_all([(fetcher, Fetch("g"))])  # error: reply type

    # A ref typed by annotation (a lookup), and an untyped actor: anything goes, as before.
    looked_up: ActorRef[Fetch, Found] = system.lookup("fetcher")
    await looked_up.tell(Flush())  # error: wrong message type
    untyped = await system.spawn(Untyped)
    await untyped.tell(Flush())
    anything: str = await untyped.ask(Fetch("h"))
    print(found, size, results, text, sizes, anything)
