"""Testing your actors: pytest, pytest-trio and a mock clock (run with pytest)."""

import pytest
import trio
import trio.testing

from examples.counter import Add, Counter, Total
from triactor import open_actor_system


async def test_counter_adds() -> None:
    # check_messages=True: every message must survive a round trip, as on a cluster.
    async with open_actor_system(check_messages=True) as system:
        counter = await system.spawn(Counter, 5, name="counter")
        await counter.tell(Add(2))
        assert await counter.ask(Total()) == 7


async def test_a_slow_reply_times_out(autojump_clock: trio.testing.MockClock) -> None:
    # autojump_clock: time jumps ahead whenever every task waits, so this takes no real time.
    async with open_actor_system() as system:
        counter = await system.spawn(Counter, name="counter")
        start = trio.current_time()
        with trio.move_on_after(3600):
            await trio.sleep_forever()
        assert trio.current_time() - start == pytest.approx(3600)
        assert await counter.ask(Total(), timeout=1.0) == 0


@pytest.mark.allow_blocking  # exempt from --triactor-blocking
async def test_that_blocks_on_purpose() -> None:
    import time

    time.sleep(0.3)  # noqa: ASYNC251 (blocks the loop on purpose)
