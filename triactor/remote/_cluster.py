"""``Cluster``: where a system's actors meet those of other processes and machines."""

from __future__ import annotations

import os
import socket
from typing import final

import attrs

__all__ = ["Cluster"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"Cluster {attribute.name} must be a number > 0, got {value!r}")


def _valid_word(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueError(
            f"Cluster {attribute.name} must be a non-empty str without spaces, got {value!r}"
        )


def _default_node() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _node_or_default(value: str | None) -> str:
    return _default_node() if value is None else value


@final
@attrs.frozen
class Cluster:
    """A Redis (or Valkey) server shared by the actor systems of several processes.

    Pass it to ``open_actor_system(cluster=...)``, ``triactor.run(tree, cluster=...)`` or
    ``start_in_thread(tree, cluster=...)`` (a URL string works too). Actors spawned with
    ``export=True`` (or ``ChildSpec(..., export=True)``) are then reachable from every process
    of the cluster through ``system.remote(name)``.

    Example::

        cluster = triactor.Cluster("redis://127.0.0.1:6379/0", name="shop")
        async with open_actor_system(cluster=cluster) as system:
            await system.spawn(Scorer, name="scorer", export=True)
            scorer = system.remote("scorer")
            print(await scorer.ask(Score(8), timeout=5))

    How it works: each exported name has one Redis stream, read by every node hosting an actor
    of that name through one consumer group (one host: a singleton, FIFO per sender; several:
    competing consumers). A message is acknowledged after its handler ends, so delivery is
    at-least-once: a node killed mid-message has its unacknowledged messages claimed by a live
    host ``claim_after`` seconds after it stopped answering.

    Args:
        url: ``redis://[user:password@]host[:port][/db]`` or ``unix:///path/to/redis.sock``
            (``?db=N`` optional); a server of Redis 6.2 or newer, or Valkey.
        name: separates clusters sharing one server (every key starts ``triactor:<name>:``).
        node: this process's name in the cluster; default: host name and pid. Give a stable
            name to a process that restarts, so that it takes up its own unacknowledged
            messages at once.
        claim_after: seconds after a node stops answering before its unacknowledged messages
            are claimed by a live node (its heartbeat's lifetime).
        max_deliveries: a message delivered this many times without an acknowledgement is
            poison: it goes to the cluster's dead-letter stream instead of an actor.
        backlog_factor: an exported actor's backlog in the cluster is bounded by its
            ``mailbox_capacity`` times this; a sender beyond it gets the actor's ``Overflow``
            policy.
        types: extra message types this node may decode (besides those its actors' handlers
            take and return, and plain data).

    Raises:
        ValueError: for a malformed URL or an option out of range.
    """

    url: str
    name: str = attrs.field(default="triactor", validator=_valid_word, kw_only=True)
    node: str = attrs.field(
        factory=_default_node,
        converter=_node_or_default,
        validator=_valid_word,
        kw_only=True,
    )
    claim_after: float = attrs.field(default=30.0, validator=_positive, kw_only=True)
    max_deliveries: int = attrs.field(default=5, kw_only=True)
    backlog_factor: int = attrs.field(default=2, kw_only=True)
    types: tuple[type, ...] = attrs.field(default=(), converter=tuple, kw_only=True)

    def __attrs_post_init__(self) -> None:
        from . import _node  # noqa: F401  (imported now, not later inside a running loop)
        from ._redis import RedisAddress

        RedisAddress.parse(self.url)  # raises ValueError naming the accepted forms
        for option in ("max_deliveries", "backlog_factor"):
            value = getattr(self, option)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Cluster {option} must be an int >= 1, got {value!r}")
        for kind in self.types:
            if not isinstance(kind, type):
                raise TypeError(f"Cluster types must be classes, got {kind!r}")

    @classmethod
    def coerce(cls, value: Cluster | str) -> Cluster:
        """Return ``value`` as a Cluster (a URL string becomes ``Cluster(url)``).

        Raises:
            TypeError: if ``value`` is neither a Cluster nor a str.
            ValueError: for a malformed URL.
        """
        if isinstance(value, Cluster):
            return value
        if isinstance(value, str):
            return cls(value)
        raise TypeError(f"cluster= takes a triactor.Cluster or a Redis URL, got {value!r}")
