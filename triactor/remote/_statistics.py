"""Statistics of the cluster, as one node sees it."""

from __future__ import annotations

from typing import final

import attrs

__all__ = ["ExportStatistics"]


@final
@attrs.frozen
class ExportStatistics:
    """What the cluster holds for one exported name hosted on this node.

    Attributes:
        name: the exported name.
        stream: its Redis stream.
        length: entries in the stream (unread, being handled, or acknowledged but not yet
            trimmed), when last refreshed.
        pending: entries delivered to some host and not yet acknowledged.
        redelivered: entries this node took over from dead nodes or its own earlier life.
        received: entries this node read from the stream.
        hosts: the nodes reading the stream (its consumer group's consumers).
    """

    name: str
    stream: str
    length: int
    pending: int
    redelivered: int
    received: int
    hosts: tuple[str, ...]
