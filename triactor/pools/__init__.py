"""Priority-aware pools: shared slots and objects that serve urgent work first, starving no one.

:class:`PriorityPool` limits how many requests hold a scarce thing at once, like
:class:`trio.CapacityLimiter`, but serves priority classes with guaranteed minimum shares and
takes turns between actors. :class:`ResourcePool` lends real objects (connections, clients)
under the same rules, checks their health and closes them on shutdown.
"""

from ._lease import Lease
from ._priority_pool import AcquireContext, PriorityPool
from ._resource_pool import ResourceContext, ResourcePool, ResourcePoolStatistics
from ._stats import WAIT_BUCKETS, ClassStatistics, PoolStatistics, WaitHistogram

__all__ = [
    "WAIT_BUCKETS",
    "AcquireContext",
    "ClassStatistics",
    "Lease",
    "PoolStatistics",
    "PriorityPool",
    "ResourceContext",
    "ResourcePool",
    "ResourcePoolStatistics",
    "WaitHistogram",
]
