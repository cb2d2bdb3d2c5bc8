"""Tutorial, step 3: the accidental time.sleep, caught; then moved off the loop."""

import time

import attrs
import trio

from triactor import Actor, handler, open_actor_system
from triactor.diagnostics import detect_blocking


@attrs.frozen
class Score:
    text: str


def expensive_score(text: str) -> int:
    time.sleep(0.3)  # stands for a synchronous HTTP call or heavy computation
    return len(text)


class Scorer(Actor):
    @handler
    async def score(self, msg: Score) -> int:
        return expensive_score(msg.text)  # an async handler: this blocks the whole loop


class ThreadedScorer(Actor):
    @handler
    def score(self, msg: Score) -> int:  # a plain def: it runs in a worker thread
        return expensive_score(msg.text)


async def main() -> None:
    async with detect_blocking(0.1, mode="record") as detector, open_actor_system() as system:
        scorer = await system.spawn(Scorer, name="scorer")
        await scorer.ask(Score("a long document"))
    for report in detector.reports:
        print(f"{report.actor} blocked the loop for {report.blocked_for:.1f} s")
        print(f"  handling {report.message_type}, at {report.culprit}")
    assert len(detector.reports) == 1
    assert detector.reports[0].actor == "/scorer"
    assert "in expensive_score" in str(detector.reports[0].culprit)

    # mode="fail" raises BlockingCallDetected if anything blocks the loop: for tests.
    async with detect_blocking(0.1, mode="fail"), open_actor_system() as system:
        scorer = await system.spawn(ThreadedScorer, name="scorer")
        assert await scorer.ask(Score("a long document")) == 15
    print("the threaded scorer kept the loop free")


if __name__ == "__main__":
    trio.run(main)
