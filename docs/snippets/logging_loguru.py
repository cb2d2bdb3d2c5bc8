"""Logging: an application that logs with loguru takes triactor's records into its sinks."""

import attrs
import trio
from loguru import logger

import triactor
from triactor import Actor, ChildSpec, Supervisor, handler, open_actor_system


@attrs.frozen
class Parse:
    text: str


class Parser(Actor):
    @handler
    async def parse(self, msg: Parse) -> int:
        return int(msg.text)  # crashes on bad input


async def main() -> None:
    lines: list[str] = []
    triactor.configure_logging(to="loguru")  # or "logging", the default
    logger.remove()  # loguru's default sink would show variable values in tracebacks
    sink = logger.add(lines.append, level="WARNING", format="{level} {message}", diagnose=False)
    try:
        async with open_actor_system() as system:
            await system.spawn(Supervisor("app", [ChildSpec(Parser, name="parser")]))
            await system.lookup("parser").tell(Parse("forty-two"))
            await trio.sleep(1)
    finally:
        logger.remove(sink)
        triactor.configure_logging(to="logging")
    print("".join(lines))  # one record for the crash: type, actor and reason, no contents
    assert any("ERROR child /app/parser crashed: ValueError" in line for line in lines)


if __name__ == "__main__":
    trio.run(main)
