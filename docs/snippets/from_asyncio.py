"""Coming from asyncio: the article's fan-out, in asyncio, for comparison."""

import asyncio
import time


async def fetch(source: str, topic: str) -> str:
    await asyncio.sleep(0.1)  # stands for the HTTP call
    return f"{source}: notes on {topic}"


async def research(topic: str) -> list[str]:
    async with asyncio.TaskGroup() as tg:  # Python 3.11+: errors are not lost
        web = tg.create_task(fetch("web", topic))
        papers = tg.create_task(fetch("papers", topic))
    return [web.result(), papers.result()]


def main() -> None:
    start = time.monotonic()
    print(asyncio.run(research("actors")))
    assert time.monotonic() - start < 0.19  # the max of the waits, not the sum


if __name__ == "__main__":
    main()
