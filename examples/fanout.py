"""Fan-out and merge: two fetch agents work in parallel, a merge agent combines their findings.

    python -m examples.fanout [--latency-a 0.6] [--latency-b 0.4] [--topic "actor model"]

The case of the background article (the hidden cost of waiting): two agents fetch data
independently, a third merges it. Called one after the other, the fetches cost the *sum* of
their waits; fanned out to two actors, each waiting in its own task, they cost the *max*.
The merge agent asks both fetchers at once with ``triactor.ask_all``: the replies come back in
order, an error in either fetch reaches the caller as itself (nothing vanishes in an event
loop) and cancels the other, and the supervisor restarts a fetcher that crashes.

The program runs the same research twice, sequentially and fanned out, and prints both
measured times next to the sum and the max of the fetch latencies.
"""

from __future__ import annotations

import argparse

import attrs
import trio

import triactor
from triactor import Actor, ActorRef, ChildSpec, Supervisor, handler, open_actor_system


@attrs.frozen
class Fetch:
    """Asks a fetch agent what its source knows about ``topic``."""

    topic: str


@attrs.frozen
class Found:
    """A fetch agent's answer."""

    source: str
    facts: tuple[str, ...]


@attrs.frozen
class Research:
    """Asks the merge agent for a brief on ``topic``, fetched in parallel or one by one."""

    topic: str
    parallel: bool = True


@attrs.frozen
class Brief:
    """The merge agent's answer: every source's facts, merged."""

    topic: str
    sources: tuple[str, ...]
    facts: tuple[str, ...]


class FetchAgent(Actor[Fetch, Found]):
    """I/O-bound: looks a topic up in one source (a simulated call of ``latency`` seconds)."""

    def __init__(self, source: str, latency: float) -> None:
        self.source = source
        self.latency = latency

    @handler
    async def fetch(self, msg: Fetch) -> Found:
        await trio.sleep(self.latency)  # the HTTP or model call: the loop stays free meanwhile
        return Found(self.source, (f"{self.source}: what is known about {msg.topic}",))


class MergeAgent(Actor[Research, Brief]):
    """Asks every fetch agent, then merges their findings into one brief."""

    def __init__(self, fetchers: tuple[str, ...]) -> None:
        self.fetchers = fetchers

    @handler
    async def research(self, msg: Research) -> Brief:
        refs: list[ActorRef[Fetch, Found]] = [self.system.lookup(n) for n in self.fetchers]
        found: list[Found] = []
        if msg.parallel:  # every ask waits at the same time; the replies come in order
            found = await triactor.ask_all([(ref, Fetch(msg.topic)) for ref in refs])
        else:
            for ref in refs:  # the lockstep way: each fetch waits for the one before
                found.append(await ref.ask(Fetch(msg.topic)))
        return Brief(
            msg.topic,
            tuple(f.source for f in found),
            tuple(fact for f in found for fact in f.facts),
        )


DEFAULT_LATENCIES = {"web": 0.6, "papers": 0.4}


def build_tree(latencies: dict[str, float] | None = None) -> Supervisor:
    """The tree: one fetch agent per source (with its latency), then the merge agent.

    ``triactor tree examples.fanout:build_tree`` draws it with the default latencies.
    """
    latencies = DEFAULT_LATENCIES if latencies is None else latencies
    fetchers = [
        ChildSpec(FetchAgent, args=(source, latency), name=f"fetch-{source}")
        for source, latency in latencies.items()
    ]
    merge = ChildSpec(MergeAgent, args=(tuple(spec.name for spec in fetchers),), name="merge")
    return Supervisor("research", [*fetchers, merge])


@attrs.frozen
class FanoutReport:
    """Measured times of the same research, sequential and fanned out, in seconds."""

    latencies: dict[str, float]
    sequential: float
    parallel: float
    brief: Brief

    @property
    def sum(self) -> float:
        """What lockstep costs: the sum of the fetch latencies."""
        return sum(self.latencies.values())

    @property
    def max(self) -> float:
        """What the fan-out should cost: the largest fetch latency."""
        return max(self.latencies.values())


async def run_fanout(latencies: dict[str, float], topic: str) -> FanoutReport:
    """Run the research sequentially, then fanned out; measure both with Trio's clock."""
    async with open_actor_system() as system:
        await system.spawn(build_tree(latencies))
        merge = system.lookup("merge")
        started = trio.current_time()
        await merge.ask(Research(topic, parallel=False))
        sequential = trio.current_time() - started
        started = trio.current_time()
        brief = await merge.ask(Research(topic, parallel=True))
        parallel = trio.current_time() - started
    return FanoutReport(latencies, sequential, parallel, brief)


def print_report(report: FanoutReport) -> None:
    """Print the measured times next to the sum and the max of the latencies."""
    print(f"Research on {report.brief.topic!r}: {len(report.latencies)} fetch agents, one merge")
    for source, latency in report.latencies.items():
        print(f"  fetch-{source:<10} waits {latency:.2f} s")
    print(
        f"  sequential (ask one, then the next)  {report.sequential:.2f} s"
        f"   sum of the waits {report.sum:.2f} s"
    )
    print(
        f"  fanned out (triactor, in parallel)   {report.parallel:.2f} s"
        f"   max of the waits {report.max:.2f} s"
    )
    speedup = report.sequential / report.parallel if report.parallel > 0 else float("inf")
    print(f"  -> {speedup:.2f}x faster: the pipeline costs the max of its waits, not the sum")
    print("Merged brief:")
    for fact in report.brief.facts:
        print(f"  - {fact}")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the comparison, print it."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--latency-a", type=float, default=DEFAULT_LATENCIES["web"], help="web fetch seconds"
    )
    parser.add_argument(
        "--latency-b", type=float, default=DEFAULT_LATENCIES["papers"], help="papers fetch seconds"
    )
    parser.add_argument("--topic", default="the actor model", help="what to research")
    args = parser.parse_args(argv)
    latencies = {"web": args.latency_a, "papers": args.latency_b}
    print_report(trio.run(run_fanout, latencies, args.topic))


if __name__ == "__main__":
    main()
