"""Timers, fan-out and pub-sub: a poller that asks every source at once and publishes."""

import attrs
import trio

import triactor
from triactor import Actor, ActorRef, handler, open_actor_system


@attrs.frozen
class Poll: ...


@attrs.frozen
class Quote:
    symbol: str


@attrs.frozen
class Price:
    symbol: str
    value: float


@attrs.frozen
class Seen: ...


class Exchange(Actor):
    def __init__(self, base: float) -> None:
        self.base = base

    @handler
    async def quote(self, msg: Quote) -> Price:
        await trio.sleep(0.2)  # stands for the HTTP call
        return Price(msg.symbol, self.base)


class Poller(Actor):
    def __init__(self, exchanges: list[ActorRef]) -> None:
        self.exchanges = exchanges

    async def on_start(self) -> None:
        self.timers.every("poll", Poll(), interval=5.0)  # first tick after 5 s

    @handler
    async def poll(self, msg: Poll) -> None:
        requests = [(exchange, Quote("TRIO")) for exchange in self.exchanges]
        prices = await triactor.ask_all(requests, timeout=2.0)  # all at once, in order
        for price in prices:
            await self.system.publish("prices", price)


class Dashboard(Actor):
    def __init__(self) -> None:
        self.prices: list[float] = []

    async def on_start(self) -> None:
        self.system.subscribe(self.ref, "prices")  # survives restarts of this actor

    @handler
    async def price(self, msg: Price) -> None:
        self.prices.append(msg.value)

    @handler
    async def seen(self, msg: Seen) -> list[float]:
        return self.prices


async def main() -> None:
    async with open_actor_system() as system:
        exchanges = [await system.spawn(Exchange, base, name=f"x{base}") for base in (1.0, 2.0)]
        dashboard = await system.spawn(Dashboard, name="dashboard")
        await system.spawn(Poller, exchanges, name="poller")
        await trio.sleep(11)  # two polls: at 5 s and at 10.2 s (fixed delay)
        print(await dashboard.ask(Seen()))
        assert await dashboard.ask(Seen()) == [1.0, 2.0, 1.0, 2.0]


if __name__ == "__main__":
    trio.run(main)
