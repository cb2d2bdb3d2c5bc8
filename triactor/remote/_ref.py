"""``RemoteActorRef``: a ref to an exported actor, wherever in the cluster it runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, final

import trio
from trio.lowlevel import checkpoint_if_cancelled

from ..actors import ActorRef, ActorStatistics
from ..actors._cell import current_cell, task_ask_chain
from ..mailbox import MailboxStatistics
from ._codec import ASK, STOP, TELL

if TYPE_CHECKING:
    from ._node import Node
    from ._outbox import Outbox

__all__ = ["RemoteActorRef"]


@final
class RemoteActorRef(ActorRef):
    """The ref of an actor reached through the cluster: its messages go through a Redis stream.

    Made by ``system.remote(name)`` and by refs arriving inside messages. ``tell`` returns once
    the message is queued on this node for sending (in order, per target); the target's
    ``Overflow`` policy applies against its backlog in the cluster. ``is_alive`` is always True:
    a remote name outlives its hosts (messages wait, bounded, until a host reads them).
    """

    __slots__ = ("_name", "_node", "_outbox")

    def __init__(self, node: Node, name: str, outbox: Outbox) -> None:
        self._node = node
        self._name = name
        self._outbox = outbox

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        return f"cluster:{self._node.cluster.name}/{self._name}"

    @property
    def key(self) -> str:
        """The Redis stream this ref sends to."""
        return self._outbox.key

    @property
    def is_alive(self) -> bool:
        return not self._node.closed

    def statistics(self) -> ActorStatistics:
        outbox = self._outbox
        return ActorStatistics(
            path=self.path,
            state="remote",
            processed=outbox.sent,
            failures=0,
            restarts=0,
            current_message_type=None,
            mailbox=MailboxStatistics(
                depth=outbox.backlog,
                capacity=outbox.bound,
                high_water=outbox.high_water,
                control_depth=0,
                senders_waiting=outbox.senders_waiting,
                dropped=outbox.dropped,
                closed=self._node.closed,
            ),
        )

    def __repr__(self) -> str:
        outbox = self._outbox
        return (
            f"<RemoteActorRef {self._name} via {outbox.key}, ~{outbox.backlog}/{outbox.bound} "
            f"in the cluster, {len(outbox)} unsent>"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteActorRef) and other._outbox.key == self._outbox.key

    def __hash__(self) -> int:
        return hash(self._outbox.key)

    async def tell(self, message: object, *, priority: int = 0) -> None:
        await checkpoint_if_cancelled()
        if priority.__class__ is not int:
            _priority(priority)
        payload = self._node.codec.encode(TELL, message, priority=priority)
        await self._outbox.send(payload, message)

    def try_tell(self, message: object, *, priority: int = 0) -> bool:
        payload = self._node.codec.encode(TELL, message, priority=_priority(priority))
        return self._outbox.try_send(payload, message)

    async def ask(self, message: object, *, timeout: float | None = None, priority: int = 0) -> Any:
        if timeout is None:
            return await self._ask(message, priority, 0.0)
        with trio.move_on_after(timeout):
            return await self._ask(message, priority, time.time() + timeout)
        raise trio.TooSlowError(
            f"ask {type(message).__qualname__} to remote actor {self._name!r} got no reply "
            f"within {timeout} s (about {self._outbox.backlog} messages queued for it in the "
            "cluster); a late reply goes to dead letters. Raise timeout=, check that a node "
            "hosts it (triactor status), or find out what keeps it busy"
        )

    async def _ask(self, message: object, priority: int, deadline: float) -> Any:
        await checkpoint_if_cancelled()
        node = self._node
        asker = current_cell.get()
        if asker is None:
            chain: tuple[str, ...] = ()
        else:
            waiting = asker.ask_chain if asker.max_concurrency == 1 else task_ask_chain.get()
            chain = (*waiting, asker.path)
        wire_chain = node.qualify_chain(chain)
        correlation, request = node.new_reply_slot(message, self._name)
        try:
            payload = node.codec.encode(
                ASK,
                message,
                priority=_priority(priority),
                reply_to=node.reply_key,
                correlation=correlation,
                chain=wire_chain,
                deadline=deadline,
            )
            await self._outbox.send(payload, message)
            return await request.wait()
        finally:
            node.forget_reply_slot(correlation, request)

    async def stop(self) -> None:
        """Ask one host of this name to stop its actor, and wait until it has."""
        node = self._node
        correlation, request = node.new_reply_slot(None, self._name)
        try:
            payload = node.codec.encode(
                STOP, None, reply_to=node.reply_key, correlation=correlation
            )
            await self._outbox.send(payload, None)
            await request.wait()
        finally:
            node.forget_reply_slot(correlation, request)


def _priority(priority: object) -> int:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(f"priority must be an int, got {priority!r}")
    return priority
