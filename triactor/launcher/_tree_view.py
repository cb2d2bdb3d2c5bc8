"""Drawing a supervision tree spec as text, without running it (``triactor tree``)."""

from __future__ import annotations

import math

from ..routing import Router
from ..supervision import Backoff, ChildSpec, Supervisor

__all__ = ["render_tree"]


def _seconds(value: float) -> str:
    return "unbounded" if math.isinf(value) else f"{value:g} s"


_UNICODE = ("├── ", "│   ", "└── ", "    ", "±")
_ASCII = ("|-- ", "|   ", "`-- ", "    ", "+/-")


def _backoff(backoff: Backoff, glyphs: tuple[str, ...]) -> str:
    jitter = f" {glyphs[4]}{backoff.jitter:.0%}" if backoff.jitter else ""
    return f"backoff {backoff.min:g}..{backoff.max:g} s x{backoff.factor:g}{jitter}"


def _supervisor_line(spec: Supervisor, glyphs: tuple[str, ...], *, root: bool) -> str:
    details = [
        f"supervisor {spec.strategy.value}",
        f"max {spec.max_restarts} restarts in {spec.within:g} s",
    ]
    if not root:
        details.append(spec.restart.value)
    if spec.shutdown_timeout is not None:
        details.append(f"shutdown {_seconds(spec.shutdown_timeout)}")
    if spec.backoff is not None:
        details.append(f"children's {_backoff(spec.backoff, glyphs)}")
    return f"{spec.name}  ({', '.join(details)})"


def _child_line(spec: ChildSpec, glyphs: tuple[str, ...]) -> str:
    actor = spec.actor
    capacity = actor.mailbox_capacity if spec.mailbox_capacity is None else spec.mailbox_capacity
    overflow = actor.overflow if spec.overflow is None else spec.overflow
    concurrency = actor.max_concurrency if spec.max_concurrency is None else spec.max_concurrency
    timeout = actor.shutdown_timeout if spec.shutdown_timeout is None else spec.shutdown_timeout
    details = [
        spec.restart.value,
        f"shutdown {_seconds(timeout)}",
        f"mailbox {capacity} {overflow.name.lower()}",
    ]
    if concurrency != 1:
        details.append(f"concurrency {concurrency}")
    if spec.backoff is not None:
        details.append(_backoff(spec.backoff, glyphs))
    return f"{spec.name}  {actor.__qualname__} ({', '.join(details)})"


def _router_line(spec: Router, glyphs: tuple[str, ...]) -> str:
    group = spec.supervisor
    routee = _child_line(spec.routee_spec, glyphs).split("  ", 1)[1]
    return (
        f"{spec.name}  router {spec.routing.value} over {spec.size} x {routee}; "
        f"max {group.max_restarts} restarts in {group.within:g} s, {spec.restart.value}"
    )


def _lines(spec: Supervisor, prefix: str, glyphs: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for index, child in enumerate(spec.children):
        last = index == len(spec.children) - 1
        branch, extend = glyphs[2:4] if last else glyphs[0:2]
        if isinstance(child, Supervisor):
            lines.append(prefix + branch + _supervisor_line(child, glyphs, root=False))
            lines.extend(_lines(child, prefix + extend, glyphs))
        elif isinstance(child, Router):
            lines.append(prefix + branch + _router_line(child, glyphs))
        elif isinstance(child, ChildSpec):
            lines.append(prefix + branch + _child_line(child, glyphs))
        else:
            lines.append(prefix + branch + repr(child))
    return lines


def render_tree(tree: Supervisor, *, ascii_only: bool = False) -> str:
    """Draw ``tree`` as a text tree: one line per supervisor and child, in start order.

    Supervisors show their strategy, restart intensity and restart type; children show their
    actor class, restart type, shutdown timeout, mailbox and backoff (the effective values:
    the spec's, or the actor class's defaults). Nothing is started. ``ascii_only`` draws the
    branches with ASCII characters only, for terminals that cannot show box-drawing ones.

    Example output::

        root  (supervisor one_for_one, max 3 restarts in 5 s)
        ├── counter  Counter (permanent, shutdown 5 s, mailbox 100 block)
        └── workers  (supervisor one_for_all, max 3 restarts in 5 s, permanent)
            └── w1  Worker (transient, shutdown 5 s, mailbox 1000 block)

    Raises:
        TypeError: if ``tree`` is not a :class:`~triactor.Supervisor`.
    """
    if not isinstance(tree, Supervisor):
        raise TypeError(f"render_tree takes a Supervisor, got {tree!r}")
    glyphs = _ASCII if ascii_only else _UNICODE
    return "\n".join([_supervisor_line(tree, glyphs, root=True), *_lines(tree, "", glyphs)])
