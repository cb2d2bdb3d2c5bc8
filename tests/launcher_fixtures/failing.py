"""Trees that fail: a root that gives up, and an actor that ignores a stop request."""

from __future__ import annotations

import attrs
import trio

from triactor import Actor, ChildSpec, Supervisor, handler


@attrs.frozen
class Explode:
    pass


@attrs.frozen
class Hang:
    pass


class Crasher(Actor):
    """Crashes right after every start, so its supervisor soon gives up."""

    async def on_start(self) -> None:
        await self.ref.tell(Explode())

    @handler
    async def explode(self, msg: Explode) -> None:
        raise RuntimeError("the crasher exploded")


class Hanger(Actor):
    """Its handler never returns, so a graceful stop waits for its long shutdown_timeout."""

    async def on_start(self) -> None:
        await self.ref.tell(Hang())

    @handler
    async def hang(self, msg: Hang) -> None:
        await trio.sleep_forever()

    async def on_stop(self) -> None:
        print("hanger on_stop ran", flush=True)


gives_up = Supervisor("root", [ChildSpec(Crasher, name="crasher")], max_restarts=2, within=60)

hangs = Supervisor("app", [ChildSpec(Hanger, name="hanger", shutdown_timeout=60.0)])
