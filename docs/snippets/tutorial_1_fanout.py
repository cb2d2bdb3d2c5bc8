"""Tutorial, step 1: two agents fetch at once and a third merges; the wait is the max."""

import attrs
import trio

from triactor import Actor, ActorRef, handler, open_actor_system


@attrs.frozen
class Fetch:
    topic: str


@attrs.frozen
class Research:
    topic: str


class Fetcher(Actor):
    """I/O-bound: looks a topic up in one source."""

    def __init__(self, source: str, latency: float) -> None:
        self.source = source
        self.latency = latency

    @handler
    async def fetch(self, msg: Fetch) -> str:
        await trio.sleep(self.latency)  # stands for the HTTP call
        return f"{self.source}: notes on {msg.topic}"


class Merger(Actor):
    """Asks every fetcher at once and merges their answers."""

    def __init__(self, fetchers: list[ActorRef]) -> None:
        self.fetchers = fetchers

    @handler
    async def research(self, msg: Research) -> list[str]:
        found = [""] * len(self.fetchers)

        async def ask(i: int, fetcher: ActorRef) -> None:
            found[i] = await fetcher.ask(Fetch(msg.topic), timeout=5.0)

        async with trio.open_nursery() as nursery:  # an error in either ask reaches us
            for i, fetcher in enumerate(self.fetchers):
                nursery.start_soon(ask, i, fetcher)
        return found


async def main() -> None:
    async with open_actor_system() as system:
        web = await system.spawn(Fetcher, "web", 1.0, name="web")
        papers = await system.spawn(Fetcher, "papers", 0.8, name="papers")
        merger = await system.spawn(Merger, [web, papers], name="merger")

        start = trio.current_time()
        brief = await merger.ask(Research("actors"))
        elapsed = trio.current_time() - start
        print(brief)
        print(f"took {elapsed:.1f} s")  # 1.0 s, the longer fetch; in lockstep, 1.8 s

        assert abs(elapsed - 1.0) < 0.2


if __name__ == "__main__":
    trio.run(main)
