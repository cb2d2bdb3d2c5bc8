"""Across processes: two nodes of a cluster, one hosting an exported actor."""

import attrs
import trio

import triactor
from triactor import Actor, RemoteError, handler, open_actor_system


@attrs.frozen
class Score:
    text: str


class Scorer(Actor):
    resume_on = (ValueError,)  # bad input fails the request, not the actor

    @handler
    async def score(self, msg: Score) -> int:
        if not msg.text:
            raise ValueError("nothing to score")
        return len(msg.text.split())


async def main(url: str = "redis://127.0.0.1:6379/0") -> None:
    # Two nodes in one process for the demo; normally each is its own process or machine.
    host = triactor.Cluster(url, name="docs-demo", node="host")
    client = triactor.Cluster(url, name="docs-demo", node="client")
    async with open_actor_system(cluster=host) as a, open_actor_system(cluster=client) as b:
        await a.spawn(Scorer, name="scorer", export=True)  # reachable from every node

        scorer = b.remote("scorer", Scorer)  # the class tells b which replies to decode
        await scorer.tell(Score("fire and forget"))
        assert await scorer.ask(Score("three little words"), timeout=5) == 3

        try:
            await scorer.ask(Score(""), timeout=5)
        except RemoteError as exc:  # the remote exception, as text, with where it happened
            print(exc.remote_type, "raised by", exc.actor, "on node", exc.node)
            assert exc.remote_type == "builtins.ValueError" and exc.node == "host"
        for stats in a.cluster_statistics():
            print(stats)


if __name__ == "__main__":
    trio.run(main)
