"""Logging: an embedded system logs through the standard logging module."""

import io
import logging

import attrs
import trio

from triactor import Actor, handler, open_actor_system


@attrs.frozen
class Greet:
    name: str


class Greeter(Actor):
    @handler
    async def greet(self, msg: Greet) -> None:
        self.log.info("greeting {}", msg.name)  # logs under this module, with the actor path


async def main() -> None:
    out = io.StringIO()
    handler_ = logging.StreamHandler(out)
    handler_.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(actor)s] %(message)s"))
    logging.getLogger().addHandler(handler_)
    logging.getLogger().setLevel(logging.INFO)  # your configuration decides what is shown
    logging.getLogger("triactor").setLevel(logging.ERROR)  # triactor itself: errors only
    try:
        async with open_actor_system() as system:
            greeter = await system.spawn(Greeter, name="greeter")
            await greeter.tell(Greet("Ada"))
    finally:
        logging.getLogger().removeHandler(handler_)
    print(out.getvalue())
    assert "INFO snippet [/greeter] greeting Ada" in out.getvalue()


if __name__ == "__main__":
    trio.run(main)
