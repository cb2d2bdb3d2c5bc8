"""A randomized, seeded fault-injection run over a deep tree: nothing lost, nothing left over."""

from __future__ import annotations

import random
import re

import attrs
import pytest
import trio
import trio.testing

from triactor import (
    Actor,
    ChildSpec,
    Strategy,
    Supervisor,
    handler,
    open_actor_system,
)

MESSAGES = 10_000
STRATEGIES = [Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]


@attrs.frozen
class Work:
    n: int


class Faults:
    """The seeded dice every worker rolls, and the count of work done."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.processed = 0
        self.start_failures = 0
        self.handler_failures = 0


class FaultyWorker(Actor):
    mailbox_capacity = 200

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    async def on_start(self) -> None:
        if self.faults.rng.random() < 0.02:
            self.faults.start_failures += 1
            raise RuntimeError(f"{self.name} failed to start")

    @handler
    async def work(self, msg: Work) -> None:
        if self.faults.rng.random() < 0.01:
            self.faults.handler_failures += 1
            raise ValueError(f"{self.name} failed on {msg.n}")
        if msg.n % 7 == 0:
            await trio.sleep(0.001)  # some work takes time, so crashes hit queued messages
        self.faults.processed += 1


def build_tree(faults: Faults) -> tuple[Supervisor, list[str], list[str]]:
    """root -> 4 mid supervisors -> 5 leaf supervisors each -> 5 workers each (100 workers)."""
    workers: list[str] = []
    supervisors = ["root"]
    mids = []
    for m in range(4):
        leaves = []
        for leaf in range(5):
            names = [f"w{m}.{leaf}.{k}" for k in range(5)]
            workers += names
            leaves.append(
                Supervisor(
                    f"leaf{m}.{leaf}",
                    [ChildSpec(FaultyWorker, args=(faults,), name=name) for name in names],
                    strategy=STRATEGIES[(m + leaf) % 3],
                    max_restarts=3,
                    within=1.0,
                )
            )
            supervisors.append(f"leaf{m}.{leaf}")
        mids.append(
            Supervisor(f"mid{m}", leaves, strategy=STRATEGIES[m % 3], max_restarts=50, within=1)
        )
        supervisors.append(f"mid{m}")
    root = Supervisor("root", mids, max_restarts=1000, within=1)
    return root, workers, supervisors


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_faults_lose_nothing(
    autojump_clock: trio.testing.MockClock, seed: int, log_records: list[dict[str, object]]
) -> None:
    faults = Faults(seed)
    tree, workers, supervisors = build_tree(faults)
    traffic = random.Random(seed + 1000)
    tasks_before = trio.lowlevel.current_statistics().tasks_living
    async with open_actor_system(dead_letters_kept=MESSAGES) as system:
        await system.spawn(tree)
        assert len(system.actors()) == len(workers) + len(supervisors)
        refs = [system.lookup(name) for name in workers]  # refs stay valid across restarts
        for n in range(MESSAGES):
            await refs[traffic.randrange(len(refs))].tell(Work(n))
            if n % 100 == 0:
                await trio.sleep(0.05)
        await trio.sleep(1)
        # Each supervisor still runs: the subtrees that gave up were restarted by their parents.
        for name in supervisors:
            assert system.lookup(name).is_alive
        dead_letters = system.dead_letters
    # Every message was handled or is a dead letter, exactly.
    assert all(isinstance(letter.message, Work) for letter in dead_letters)
    assert faults.processed + dead_letters.count == MESSAGES
    assert faults.handler_failures > 10 and faults.start_failures > 0
    # No task outlived the system.
    assert trio.lowlevel.current_statistics().tasks_living == tasks_before
    # Every supervisor that gave up did so by its rule: over its max_restarts in its window.
    gave_up = [str(r["message"]) for r in log_records if "gave up: child" in str(r["message"])]
    assert gave_up, "the fault rate should make some leaf supervisor give up"
    for text in gave_up:
        found = re.search(r"would be restart (\d+) within .* over max_restarts=(\d+)", text)
        assert found is not None and int(found[1]) > int(found[2])
    print(
        f"seed {seed}: processed {faults.processed}, dead letters {dead_letters.count}, "
        f"handler crashes {faults.handler_failures}, start failures {faults.start_failures}, "
        f"give-ups {len(gave_up)}"
    )
