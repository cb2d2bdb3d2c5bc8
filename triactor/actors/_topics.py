"""Topics: publish/subscribe inside one actor system (``system.subscribe`` / ``publish``).

The registry is its own object, and the system reaches it only through :meth:`subscribe`,
:meth:`unsubscribe`, :meth:`subscribers` and :meth:`publish`, so that a transport can extend
it: across nodes (``triactor.remote``) a topic is also a stream, read by every node with
subscribers through a consumer group of its own and handed to them through this registry.
Delivery to one subscriber goes through its ref, so any :class:`ActorRef` whose ``tell``
honours its actor's overflow policy can be a subscriber; only the death watch (which removes
a stopped subscriber) needs the system to know the ref.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, final

import trio
from trio.lowlevel import enable_ki_protection

from .._errors import MailboxFull
from .._groups import unwrapped_group
from ..mailbox import Overflow
from ._dead_letters import DeadLetterReason
from ._ref import ActorRef, LocalActorRef

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ["TopicRegistry"]


@final
class _Subscription:
    __slots__ = ("lagging", "ref")

    def __init__(self, ref: ActorRef[Any, Any]) -> None:
        self.ref = ref
        #: Set when a publish gave up waiting for room in this subscriber's BLOCK mailbox;
        #: cleared when a publish finds room again. Publishes do not wait for it meanwhile.
        self.lagging = False


def _check_topic(topic: object) -> str:
    if not isinstance(topic, str):
        raise TypeError(f"a topic is a str, got {topic!r}")
    if not topic:
        raise ValueError("a topic must be a non-empty str")
    return topic


@final
class TopicRegistry:
    """The topics of one actor system and their subscribers. Internal: use the system's methods."""

    __slots__ = ("_system", "_topics", "_watched")

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        # Subscribers per topic, in subscription order.
        self._topics: dict[str, dict[ActorRef[Any, Any], _Subscription]] = {}
        # Refs whose death already triggers their removal from every topic (one watch each).
        self._watched: set[ActorRef[Any, Any]] = set()

    def __repr__(self) -> str:
        return f"<TopicRegistry {len(self._topics)} topics>"

    def subscribe(self, ref: ActorRef[Any, Any], topic: str) -> None:
        """Add ``ref`` to ``topic`` (once; subscribing again changes nothing)."""
        topic = _check_topic(topic)
        if not isinstance(ref, ActorRef):
            raise TypeError(f"subscribe takes an ActorRef, got {ref!r}")
        if not isinstance(ref, LocalActorRef):
            raise TypeError(
                f"subscribe takes the ref of an actor of this system (from spawn or lookup), "
                f"got {ref!r}; subscribe the actor on the node that hosts it: in a cluster, "
                "what is published on any node reaches it there"
            )
        if not ref.is_alive:
            return
        if ref not in self._watched:
            self._system.when_stopped(ref, self._forget)  # raises for a foreign ref
            self._watched.add(ref)
        subscribers = self._topics.setdefault(topic, {})
        if ref not in subscribers:
            subscribers[ref] = _Subscription(ref)

    def unsubscribe(self, ref: ActorRef[Any, Any], topic: str) -> None:
        """Remove ``ref`` from ``topic``; nothing happens if it was not subscribed."""
        subscribers = self._topics.get(_check_topic(topic))
        if subscribers is not None and subscribers.pop(ref, None) is not None and not subscribers:
            del self._topics[topic]

    def subscribers(self, topic: str) -> list[ActorRef[Any, Any]]:
        """The refs subscribed to ``topic``, in subscription order."""
        return list(self._topics.get(_check_topic(topic), ()))

    def _forget(self, ref: ActorRef[Any, Any]) -> None:
        self._watched.discard(ref)
        for topic in [topic for topic, subs in self._topics.items() if ref in subs]:
            self.unsubscribe(ref, topic)

    async def publish(
        self, topic: str, message: object, *, priority: int, timeout: float | None
    ) -> int:
        """Deliver ``message`` to every subscriber of ``topic``; see ``ActorSystem.publish``."""
        topic = _check_topic(topic)
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"publish timeout must be >= 0 seconds or None, got {timeout!r}")
        if self._system.check_messages:
            self._system.check_message(message)
        await trio.lowlevel.checkpoint_if_cancelled()
        delivered = 0
        waiting: list[_Subscription] = []
        for sub in list(self._topics.get(topic, {}).values()):
            queued = self._offer(sub, message, priority)
            if queued is None:
                waiting.append(sub)
            elif queued:
                delivered += 1
        if waiting:
            delivered += await self._wait_for_room(topic, waiting, message, priority, timeout)
        return delivered

    def _offer(self, sub: _Subscription, message: object, priority: int) -> bool | None:
        """Queue without waiting. True: queued; False: not queued (and recorded); None: the
        subscriber's BLOCK mailbox is full (or it is not local) and the publish should wait."""
        ref = sub.ref
        if not isinstance(ref, LocalActorRef):
            return None  # its own tell applies its actor's policy
        cell = ref._cell
        mailbox = cell.mailbox
        try:
            if mailbox.put_nowait(message, priority):
                sub.lagging = False
                return True
        except MailboxFull:  # Overflow.FAIL: the publish goes on to the other subscribers
            self._dead_letter(ref, message, "its mailbox is full (Overflow.FAIL)")
            return False
        if mailbox.closed:
            cell.dead_letter(message, DeadLetterReason.ACTOR_STOPPED)
            return False
        if mailbox.overflow is not Overflow.BLOCK:
            return False  # DROP_NEWEST dropped it into dead letters already
        if sub.lagging:
            self._dead_letter(ref, message, "it is still full since a publish timed out on it")
            return False
        return None

    @enable_ki_protection  # its nursery must be exited on every path, even a Ctrl-C's
    async def _wait_for_room(
        self,
        topic: str,
        waiting: list[_Subscription],
        message: object,
        priority: int,
        timeout: float | None,
    ) -> int:
        queued: list[_Subscription] = []
        refused: list[_Subscription] = []

        async def deliver(sub: _Subscription) -> None:
            try:
                await sub.ref.tell(message, priority=priority)
            except MailboxFull:
                refused.append(sub)
                self._dead_letter(sub.ref, message, "its mailbox is full (Overflow.FAIL)")
            else:
                queued.append(sub)

        with trio.move_on_after(math.inf if timeout is None else timeout):
            with unwrapped_group():
                async with trio.open_nursery() as nursery:
                    for sub in waiting:
                        nursery.start_soon(deliver, sub)
        for sub in waiting:
            if sub in queued:
                sub.lagging = False
            elif sub not in refused:
                sub.lagging = True
                self._dead_letter(
                    sub.ref,
                    message,
                    f"publish to topic {topic!r} waited {timeout} s for room in its full "
                    "mailbox; later publishes skip it until it has room",
                )
        return len(queued)

    def _dead_letter(self, ref: ActorRef[Any, Any], message: object, detail: str) -> None:
        self._system.dead_letters._record(
            ref.path, message, DeadLetterReason.PUBLISH_DROPPED, detail
        )
