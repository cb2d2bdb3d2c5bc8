"""Routers: one ref in front of a supervised group of identical actors (routees)."""

from ._ref import RouterRef
from ._router import Router
from ._routing import Routing

__all__ = ["Router", "RouterRef", "Routing"]
