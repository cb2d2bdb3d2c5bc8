"""Trees whose messages carry a secret, which must never reach any output by default.

``shop`` crashes on a ``Charge`` (whose ``card_token`` is the secret, also held in a local
variable of the crashing frame), dead-letters a ``Refund`` it has no handler for, and gives up
on the second crash. ``vault`` holds a ``Deposit`` in a long handler, for status snapshots.
``typo`` has a ``ChildSpec`` whose keyword does not match the constructor.
"""

from __future__ import annotations

import attrs
import trio

from triactor import Actor, ChildSpec, Supervisor, handler

SECRET = "sk-live-123456"


@attrs.frozen
class Charge:
    card_token: str


@attrs.frozen
class Refund:
    card_token: str


@attrs.frozen
class Deposit:
    card_token: str


class Payments(Actor):
    """Gets a message it has no handler for, then one that crashes it."""

    async def on_start(self) -> None:
        await self.ref.tell(Refund(SECRET))
        await self.ref.tell(Charge(SECRET))

    @handler
    async def charge(self, msg: Charge) -> None:
        token = msg.card_token  # a local variable holding the secret
        raise RuntimeError(f"card declined ({len(token)} characters)")


class Vault(Actor):
    """Handles one deposit until the shutdown."""

    async def on_start(self) -> None:
        await self.ref.tell(Deposit(SECRET))

    @handler
    async def deposit(self, msg: Deposit) -> None:
        while not self.system.statistics().shutting_down:  # noqa: ASYNC110
            await trio.sleep(0.01)


class NeedsRate(Actor):
    def __init__(self, rate: float) -> None:
        self.rate = rate


shop = Supervisor("shop", [ChildSpec(Payments, name="payments")], max_restarts=1, within=60)

vault = Supervisor("bank", [ChildSpec(Vault, name="vault")])

typo = Supervisor(
    "app", [ChildSpec(NeedsRate, name="rates", kwargs={"rte": 0.5})], max_restarts=3, within=60
)
