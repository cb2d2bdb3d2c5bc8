"""triactor: actors on Trio, with bounded mailboxes, OTP supervisor trees and priority pools.

This module is the public face: everything users need is importable from ``triactor``.
"""

from ._asyncio import run_asyncio
from ._errors import (
    ActorError,
    ActorNotFound,
    ActorStopped,
    AskCycleError,
    MailboxFull,
    NoHandler,
    PoolOverloaded,
    RemoteError,
    RestartIntensityExceeded,
)
from ._logging import configure_logging
from .actors import (
    Actor,
    ActorRef,
    ActorState,
    ActorStatistics,
    ActorSystem,
    DeadLetter,
    DeadLetterReason,
    DeadLetters,
    ExitReason,
    SystemStatistics,
    Terminated,
    Timers,
    ask_all,
    handler,
    open_actor_system,
)
from .launcher import ActorPortal, RunResult, run, start_in_thread
from .mailbox import MailboxStatistics, Overflow
from .parallel import run_in_process
from .pools import (
    ClassStatistics,
    Lease,
    PoolStatistics,
    PriorityPool,
    ResourcePool,
    ResourcePoolStatistics,
)
from .remote import Cluster, ExportStatistics
from .routing import Router, RouterRef, Routing
from .supervision import (
    Backoff,
    ChildCounts,
    ChildInfo,
    ChildSpec,
    ChildState,
    Restart,
    Strategy,
    Supervisor,
)

__all__ = [
    "Actor",
    "ActorError",
    "ActorNotFound",
    "ActorPortal",
    "ActorRef",
    "ActorState",
    "ActorStatistics",
    "ActorStopped",
    "ActorSystem",
    "AskCycleError",
    "Backoff",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "ClassStatistics",
    "Cluster",
    "DeadLetter",
    "DeadLetterReason",
    "DeadLetters",
    "ExitReason",
    "ExportStatistics",
    "Lease",
    "MailboxFull",
    "MailboxStatistics",
    "NoHandler",
    "Overflow",
    "PoolOverloaded",
    "PoolStatistics",
    "PriorityPool",
    "ResourcePool",
    "RemoteError",
    "ResourcePoolStatistics",
    "Restart",
    "RestartIntensityExceeded",
    "Router",
    "RouterRef",
    "Routing",
    "RunResult",
    "Strategy",
    "Supervisor",
    "SystemStatistics",
    "Terminated",
    "Timers",
    "ask_all",
    "configure_logging",
    "handler",
    "open_actor_system",
    "run",
    "run_asyncio",
    "run_in_process",
    "start_in_thread",
]
