"""The cluster: actors across processes and machines on Redis Streams, at-least-once.

``Cluster`` is the public face; the codec, the remote refs, the stream-fed mailboxes and the
Redis connection layer are private modules loaded when a system joins a cluster.
"""

from ._cluster import Cluster
from ._statistics import ExportStatistics

__all__ = ["Cluster", "ExportStatistics"]
