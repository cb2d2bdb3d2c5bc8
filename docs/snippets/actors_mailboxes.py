"""Actors and mailboxes: overflow policies, priorities and dead letters."""

import attrs
import trio

from triactor import Actor, DeadLetterReason, MailboxFull, Overflow, handler, open_actor_system


@attrs.frozen
class Job:
    n: int


@attrs.frozen
class Done: ...


class Worker(Actor):
    """Takes a second per job and remembers the order it handled them in."""

    mailbox_capacity = 2

    def __init__(self) -> None:
        self.done: list[int] = []

    @handler
    async def work(self, job: Job) -> None:
        await trio.sleep(1.0)
        self.done.append(job.n)

    @handler
    async def report(self, msg: Done) -> list[int]:
        return self.done


async def main() -> None:
    async with open_actor_system() as system:
        # BLOCK (the default): a sender waits for room. This is backpressure.
        worker = await system.spawn(Worker, name="blocking")
        start = trio.current_time()
        for n in range(4):
            await worker.tell(Job(n))
        print(f"4 jobs sent in {trio.current_time() - start:.0f} s")  # waited for room

        # Priorities: the higher one is handled first; equal ones keep their order.
        await worker.tell(Job(10))
        await worker.tell(Job(11), priority=1)
        assert await worker.ask(Done(), priority=-1) == [0, 1, 2, 3, 11, 10]

        # DROP_OLDEST keeps the newest; every dropped message becomes a dead letter.
        latest = await system.spawn(Worker, name="latest", overflow=Overflow.DROP_OLDEST)
        for n in range(5):
            await latest.tell(Job(n))  # a tell with room does not wait: all 5 arrive at once
        dropped = [letter.message for letter in system.dead_letters]
        print("dropped:", dropped)  # Job 0, 1 and 2; jobs 3 and 4 are kept
        assert dropped == [Job(0), Job(1), Job(2)]
        assert system.dead_letters.count_by_reason() == {DeadLetterReason.DROPPED_OLDEST: 3}

        # FAIL refuses at once: the sender decides what to do.
        strict = await system.spawn(Worker, name="strict", overflow=Overflow.FAIL)
        await strict.tell(Job(0))
        await strict.tell(Job(1))  # full: two queued
        try:
            await strict.tell(Job(2))
        except MailboxFull as exc:
            print(exc)
        assert not strict.try_tell(Job(2))  # try_tell never waits and never raises for it

        print(strict.statistics().mailbox)  # depth, capacity, high-water mark, dropped...


if __name__ == "__main__":
    trio.run(main)
