"""The seam a transport (the Redis cluster in ``triactor.remote``) plugs into.

The core never imports a transport: ``open_actor_system(cluster=...)`` loads one lazily and the
system calls it through this protocol to export a cell, make a ref to an actor elsewhere, learn
the message types its actors take, and stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._actor import Actor
    from ._cell import ActorCell
    from ._ref import ActorRef

__all__ = ["Transport"]


class Transport(Protocol):
    """What an :class:`~triactor.ActorSystem` needs from a transport. Internal."""

    @property
    def node(self) -> str:
        """This process's node name in the cluster."""
        ...

    def export(self, cell: ActorCell) -> None:
        """Feed ``cell``'s mailbox from the cluster under the cell's name (until it stops)."""

    def remote_ref(self, name: str, actor_class: type[Actor] | None = None) -> ActorRef:
        """A ref to the exported actor ``name``, wherever it runs (or before it runs)."""
        ...

    def learn_actor_class(self, actor_class: type[Actor]) -> None:
        """Allow the message and reply types of ``actor_class``'s handlers on the wire."""

    def join_topic(self, topic: str) -> None:
        """Deliver ``topic``'s messages published on other nodes to this system's subscribers."""

    async def publish(self, topic: str, message: object, priority: int) -> None:
        """Publish ``message`` on ``topic`` to the other nodes' subscribers."""

    async def stop_feeding(self) -> None:
        """Stop reading new messages from the cluster (the start of a graceful shutdown)."""

    async def close(self) -> None:
        """Flush what is still to be sent and acknowledged, then disconnect."""

    def statistics(self) -> Any:
        """The transport's view of the exported names hosted here (for snapshots)."""
        ...
