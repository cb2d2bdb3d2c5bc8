"""Actors and messages the multi-process cluster tests run in node processes.

They live in an importable module (not ``__main__``) so that every process tags them alike.
"""

from __future__ import annotations

import os
import signal

import attrs
import trio

from triactor import Actor, ChildSpec, Supervisor, handler


@attrs.frozen
class Job:
    id: int
    delay: float = 0.0


@attrs.frozen
class KillNode:
    """Poison: the host dies (SIGKILL) every time it handles this."""


@attrs.frozen
class Echo:
    value: str


@attrs.frozen
class Fail:
    text: str


@attrs.frozen
class Slow:
    seconds: float


@attrs.frozen
class AskVia:
    """Ask the named remote actor ``Echo(...)``, or forward this AskVia to it."""

    target: str
    hops: int


class Worker(Actor):
    mailbox_capacity = 50

    def __init__(self, record: str) -> None:
        self.fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @handler
    async def job(self, msg: Job) -> None:
        if msg.delay:
            await trio.sleep(msg.delay)
        os.write(self.fd, b"%d\n" % msg.id)

    @handler
    async def kill(self, msg: KillNode) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    @handler
    async def echo(self, msg: Echo) -> str:
        return f"{msg.value} from {self.system.node}"

    @handler
    async def fail(self, msg: Fail) -> str:
        raise ValueError(msg.text)

    @handler
    async def slow(self, msg: Slow) -> str:
        await trio.sleep(msg.seconds)
        return "slow done"

    @handler
    async def via(self, msg: AskVia) -> str:
        target = self.system.remote(msg.target)
        if msg.hops <= 0:
            reply: str = await target.ask(Echo("end"), timeout=10)
            return reply
        reply = await target.ask(AskVia(self.name, msg.hops - 1), timeout=10)
        return reply


class Greeter(Actor):
    """Answers from whichever node hosts it (for the launcher's ``--cluster``)."""

    @handler
    async def greet(self, msg: Echo) -> str:
        return f"hello {msg.value} from {self.system.node}"


#: ``triactor run tests.remote_actors:greeter_tree --cluster URL``
greeter_tree = Supervisor("root", [ChildSpec(Greeter, name="greeter", export=True)])


class Recorder(Actor):
    """Records each job's id in ``$TRIACTOR_TEST_RECORDS/<node>.ids`` (for ``--workers``)."""

    mailbox_capacity = 50

    def __init__(self) -> None:
        directory = os.environ["TRIACTOR_TEST_RECORDS"]
        path = os.path.join(directory, f"{self.system.node}.ids")
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @handler
    async def job(self, msg: Job) -> None:
        if msg.delay:
            await trio.sleep(msg.delay)
        os.write(self.fd, b"%d\n" % msg.id)


#: ``triactor run tests.remote_actors:recorder_tree --workers N``
recorder_tree = Supervisor("root", [ChildSpec(Recorder, name="recorder", export=True)])
