"""Tutorial, step 4: a rate-limited API shared through a priority pool."""

import attrs
import trio

from triactor import Actor, PriorityPool, handler, open_actor_system


@attrs.frozen
class Document:
    id: int


class Enricher(Actor):
    """Calls the shared API; the pool decides who goes first."""

    max_concurrency = 8  # up to 8 calls waiting or in flight
    shutdown_timeout = 30.0  # leaving the system drains the mailbox: give it time

    def __init__(self, api: PriorityPool) -> None:
        self.api = api

    @handler
    async def enrich(self, doc: Document) -> None:
        async with self.api.acquire():  # the priority class comes from the actor's class
            await trio.sleep(0.05)  # stands for the API call


class UrgentEnricher(Enricher):
    priority = "urgent"


class BulkEnricher(Enricher):
    priority = "bulk"


async def main() -> None:
    # 2 calls at once, 20 calls a second; urgent first, but bulk keeps 25% of the grants.
    api = PriorityPool(2, classes={"urgent": 0.0, "bulk": 0.25}, rate=20.0, burst=2)
    async with open_actor_system() as system:
        urgent = await system.spawn(UrgentEnricher, api, name="urgent")
        bulk = await system.spawn(BulkEnricher, api, name="bulk")
        for n in range(40):
            await bulk.tell(Document(n))  # the batch arrives first...
        for n in range(10):
            await urgent.tell(Document(100 + n))  # ...then the urgent work
    # Leaving the block drained both mailboxes: every document was enriched.
    for name, stats in api.statistics().classes.items():
        print(f"{name:<7} grants {stats.grants:>3}  median wait {stats.wait_p50:.2f} s")

    classes = api.statistics().classes
    assert classes["urgent"].grants == 10 and classes["bulk"].grants == 40
    assert classes["urgent"].wait_p50 < classes["bulk"].wait_p50


if __name__ == "__main__":
    trio.run(main)
