"""Actors: the ``Actor`` base class, ``@handler`` dispatch, refs, the system and dead letters."""

from ._actor import Actor
from ._ask_all import ask_all
from ._cell import ActorState, ExitReason
from ._dead_letters import DeadLetter, DeadLetterReason, DeadLetters
from ._handler import handler
from ._ref import ActorRef
from ._statistics import ActorStatistics
from ._system import ActorSystem, SystemStatistics, Terminated, open_actor_system
from ._timers import Timers

__all__ = [
    "Actor",
    "ActorRef",
    "ActorState",
    "ActorStatistics",
    "ActorSystem",
    "DeadLetter",
    "DeadLetterReason",
    "DeadLetters",
    "ExitReason",
    "SystemStatistics",
    "Terminated",
    "Timers",
    "ask_all",
    "handler",
    "open_actor_system",
]
