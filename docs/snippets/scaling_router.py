"""Scaling out: CPU work in worker processes, behind a router of one scorer per core."""

import os

import trio

import triactor
from examples.scale_out import Document, score_text
from triactor import Actor, ActorStatistics, handler, open_actor_system


class Scorer(Actor):
    @handler
    async def score(self, doc: Document) -> int:
        # score_text is pure Python: in a worker process it uses another core, and the
        # loop stays free. It must be defined at module level (workers import it).
        return await triactor.run_in_process(score_text, doc.text, 2_000)


async def main() -> None:
    cores = os.cpu_count() or 1
    router = triactor.Router("scorers", Scorer, size=cores, routing=triactor.Routing.LEAST_BUSY)
    async with open_actor_system() as system:
        scorers = await system.spawn(router)  # one ref in front of one scorer per core
        docs = [Document(n, f"document {n}") for n in range(4 * cores)]
        scores = await triactor.ask_all([(scorers, doc) for doc in docs], timeout=60)
        assert len(scores) == len(docs)
        per_routee: list[ActorStatistics] = scorers.routee_statistics()
        print("documents per scorer:", [s.processed for s in per_routee])
        assert sum(s.processed for s in per_routee) == len(docs)


if __name__ == "__main__":  # the guard is needed: worker processes import the main module
    trio.run(main)
