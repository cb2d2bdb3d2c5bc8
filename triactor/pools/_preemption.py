"""Which leases a long-waiting request may preempt.

A request of class ``c`` that has waited longer than ``preempt_after`` may preempt preemptible
leases of lower classes that were granted *before it arrived*: those are the priority
inversion it is stuck behind. Leases granted while it waits (a lower class's guaranteed share,
handed out by the credit rule) are left alone, so preemption never takes back a minimum share.
The lowest class goes first, and within a class the lease held longest.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._lease import Lease
from ._queue import Waiter

__all__ = ["victims"]


def victims(leases: Iterable[Lease], waiter: Waiter) -> list[Lease]:
    """Leases ``waiter`` may preempt, in the order to preempt them.

    ``leases`` must be in grant order (the pool keeps them so).
    """
    found = [
        lease
        for lease in leases
        if lease.cancel_scope is not None
        and not lease.preempted
        and lease.index > waiter.index
        and lease.seq < waiter.seq
    ]
    found.sort(key=lambda lease: -lease.index)  # stable: oldest first within a class
    return found
