"""Actors and helpers shared by the supervision tests."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from triactor import Actor, handler


@attrs.frozen
class Crash:
    """Makes a Worker raise ValueError."""


@attrs.frozen
class Ping:
    """Asks a Worker for (name, incarnation number)."""


@attrs.frozen
class StopSelf:
    """Makes a Worker stop itself: a normal exit."""


@attrs.frozen
class Hang:
    """Makes a Worker's handler wait forever (it ignores stop requests)."""


class Journal:
    """Records lifecycle events (kind, name, time) in the order they happen."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.times: list[float] = []
        self.starts: dict[str, int] = {}
        #: Names whose on_start must fail (a restart that itself fails).
        self.fail_start: set[str] = set()
        #: Seconds each name's on_stop takes.
        self.stop_delay: dict[str, float] = {}

    def record(self, kind: str, name: str) -> None:
        self.events.append((kind, name))
        self.times.append(trio.current_time())

    def of(self, kind: str) -> list[str]:
        return [name for k, name in self.events if k == kind]

    def clear(self) -> None:
        self.events.clear()
        self.times.clear()


class Worker(Actor):
    """A child that journals its lifecycle and crashes, stops or hangs on request."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def on_start(self) -> None:
        self.journal.starts[self.name] = self.journal.starts.get(self.name, 0) + 1
        if self.name in self.journal.fail_start:
            self.journal.record("failed-start", self.name)
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.record("start", self.name)

    async def on_stop(self) -> None:
        self.journal.record("stop", self.name)
        delay = self.journal.stop_delay.get(self.name)
        if delay:
            await trio.sleep(delay)

    @handler
    async def crash(self, msg: Crash) -> None:
        raise ValueError(f"{self.name} crashed on purpose")

    @handler
    async def ping(self, msg: Ping) -> tuple[str, int]:
        return self.name, self.journal.starts[self.name]

    @handler
    async def stop_self(self, msg: StopSelf) -> None:
        self.stop()

    @handler
    async def hang(self, msg: Hang) -> None:
        await trio.sleep_forever()


def messages_of(records: list[dict[str, object]], level: str) -> list[str]:
    """The text of the captured loguru records at ``level``."""
    return [str(r["message"]) for r in records if getattr(r["level"], "name", None) == level]


def count_where(records: list[dict[str, object]], predicate: Callable[[str], bool]) -> int:
    """How many captured records' messages satisfy ``predicate``."""
    return sum(1 for r in records if predicate(str(r["message"])))
