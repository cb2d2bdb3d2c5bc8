"""Pools: a priority pool in front of a scarce resource."""

import trio

from triactor import PoolOverloaded, PriorityPool


async def main() -> None:
    # 4 slots; "high" is served first, "mid" and "low" keep 20% and 10% of the grants.
    pool = PriorityPool(4, classes={"high": 0.0, "mid": 0.2, "low": 0.1}, max_waiting=100)
    served: list[str] = []

    async def call_model(priority: str) -> None:
        async with pool.acquire(priority=priority):  # one of the 4 slots while inside
            served.append(priority)
            await trio.sleep(0.05)  # stands for the model call

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(call_model, "low")
        await trio.sleep(0.01)  # the low ones queue first...
        for _ in range(20):
            nursery.start_soon(call_model, "high")  # ...then urgent work arrives

    print("order served:", " ".join(p[0] for p in served))
    for name, stats in pool.statistics().classes.items():
        print(f"{name:<5} grants {stats.grants:>2}  p50 wait {stats.wait_p50 * 1000:4.0f} ms")
    # The documented guarantee: while "low" waits, at most this many grants go elsewhere.
    print("low waits for at most", pool.starvation_bound("low"), "other grants")
    print(f"low is served within {pool.wait_bound('low', max_hold=0.05):.2f} s")
    stats = pool.statistics().classes
    assert stats["high"].wait_p50 < stats["low"].wait_p50
    assert stats["low"].longest_run <= pool.starvation_bound("low")

    # acquire_nowait never waits; max_waiting sheds load instead of queueing forever.
    full = PriorityPool(1, classes={"only": 0.0}, max_waiting=0)
    with full.acquire_nowait("only"):
        try:
            async with full.acquire("only"):
                pass
        except PoolOverloaded as exc:
            print(exc)


if __name__ == "__main__":
    trio.run(main)
