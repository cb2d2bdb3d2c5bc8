"""Messages and small actors shared by the core runtime tests.

Every message is an attrs class of plain data, so that ``check_messages=True`` accepts it.
"""

from __future__ import annotations

import attrs
import trio

from triactor import Actor, handler


@attrs.frozen
class Item:
    """A numbered message; actors record ``value`` in the order they handle items."""

    value: int


@attrs.frozen
class Ping:
    """Answered with ``"pong"``."""


@attrs.frozen
class Hold:
    """Handled by waiting on the actor's gate; the reply is ``"released"``."""


@attrs.frozen
class Boom:
    """Handled by raising ``Kaboom(text)``."""

    text: str = "boom"


@attrs.frozen
class Unhandled:
    """No test actor has a handler for this."""


@attrs.frozen
class StopSelf:
    """Handled by ``self.stop()``."""


class Kaboom(Exception):
    """A user error raised inside handlers."""


class Recorder(Actor):
    """Records items in handling order; ``Hold`` parks the actor until ``gate`` is set."""

    def __init__(self, seen: list[int] | None = None, gate: trio.Event | None = None) -> None:
        self.seen = [] if seen is None else seen
        self.gate = trio.Event() if gate is None else gate

    @handler
    async def item(self, msg: Item) -> int:
        self.seen.append(msg.value)
        return msg.value

    @handler
    async def ping(self, msg: Ping) -> str:
        return "pong"

    @handler
    async def hold(self, msg: Hold) -> str:
        await self.gate.wait()
        return "released"

    @handler
    async def boom(self, msg: Boom) -> None:
        raise Kaboom(msg.text)

    @handler
    async def stop_self(self, msg: StopSelf) -> None:
        self.stop()


class Stepper(Actor):
    """Handles each item only when the test sends one step on ``steps``.

    ``started`` records each item's value as its handling begins, so a test can tell exactly
    which message the actor has taken out of its mailbox.
    """

    def __init__(self, steps: trio.MemoryReceiveChannel[None], started: list[int]) -> None:
        self.steps = steps
        self.started = started

    @handler
    async def item(self, msg: Item) -> int:
        self.started.append(msg.value)
        await self.steps.receive()
        return msg.value
