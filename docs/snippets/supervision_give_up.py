"""Supervision: a supervisor that gives up, and what the caller sees."""

import attrs
import trio

from triactor import (
    Actor,
    ChildSpec,
    RestartIntensityExceeded,
    Supervisor,
    handler,
    open_actor_system,
)


@attrs.frozen
class Crash: ...


class Fragile(Actor):
    @handler
    async def crash(self, msg: Crash) -> None:
        raise ConnectionError("the database went away")


tree = Supervisor("root", [ChildSpec(Fragile, name="fragile")], max_restarts=2, within=60.0)


async def main() -> None:
    try:
        async with open_actor_system() as system:
            await system.spawn(tree)
            fragile = system.lookup("fragile")
            for _ in range(3):  # the third crash in 60 s is one too many
                await fragile.tell(Crash())
            await trio.sleep_forever()  # the root's failure ends the block
    except RestartIntensityExceeded as exc:
        print(exc)  # names the supervisor, the child and the count
        print(repr(exc.last_error))
        assert exc.supervisor == "/root" and exc.child == "/root/fragile"
        assert isinstance(exc.__cause__, ConnectionError)


if __name__ == "__main__":
    trio.run(main)
