"""What every actor is doing: ``system.snapshot()`` and its text rendering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, final

import attrs

from ._stacks import format_frames

if TYPE_CHECKING:
    from ..actors._cell import ActorCell

__all__ = ["ActorSnapshot", "format_snapshot", "snapshot_cells"]


@final
@attrs.frozen
class ActorSnapshot:
    """One actor at the moment of a snapshot.

    Attributes:
        path: the actor's path.
        state: ``starting``, ``idle``, ``processing``, ``stopping``, ``restarting`` or
            ``stopped``.
        mailbox_depth: messages queued now.
        mailbox_high_water: the deepest the mailbox has been.
        processed: messages handled successfully, over all incarnations.
        failures: handler exceptions, over all incarnations.
        restarts: restarts by its supervisor.
        current_message_type: the type of the message being handled, or None.
        busy_for: seconds spent on the current message so far (0.0 when idle).
        await_stack: where the busy handler is waiting, outermost first
            (``file:line in function``); only for handlers busy longer than the requested age.
    """

    path: str
    state: str
    mailbox_depth: int
    mailbox_high_water: int
    processed: int
    failures: int
    restarts: int
    current_message_type: str | None
    busy_for: float
    await_stack: tuple[str, ...] | None = None


def snapshot_cells(
    cells: Sequence[ActorCell], *, stacks_older_than: float | None = None
) -> list[ActorSnapshot]:
    """Snapshot each cell; include await stacks of handlers busy longer than the given age."""
    result = []
    for cell in cells:
        current = cell.current
        busy_for = cell.busy_for()
        stack = None
        if (
            stacks_older_than is not None
            and current is not None
            and busy_for >= stacks_older_than
            and cell.task is not None
        ):
            stack = format_frames(cell.task.iter_await_frames())
        mailbox = cell.mailbox.statistics()
        result.append(
            ActorSnapshot(
                path=cell.path,
                state=cell.activity.value,
                mailbox_depth=mailbox.depth,
                mailbox_high_water=mailbox.high_water,
                processed=cell.processed,
                failures=cell.failures,
                restarts=cell.restarts,
                current_message_type=None if current is None else type(current).__qualname__,
                busy_for=busy_for,
                await_stack=stack,
            )
        )
    return result


def format_snapshot(snapshots: Sequence[ActorSnapshot]) -> str:
    """Render snapshots as an indented tree by path, one actor a line, stacks under busy ones."""
    lines = []
    for snap in sorted(snapshots, key=lambda s: s.path):
        depth = snap.path.count("/") - 1
        name = snap.path.rsplit("/", 1)[-1]
        doing = (
            f" handling {snap.current_message_type} for {snap.busy_for:.3f}s"
            if snap.current_message_type
            else ""
        )
        lines.append(
            f"{'  ' * depth}{name} [{snap.state}]{doing} "
            f"mailbox {snap.mailbox_depth} (max {snap.mailbox_high_water}) "
            f"processed {snap.processed} failures {snap.failures} restarts {snap.restarts}"
        )
        for frame in snap.await_stack or ():
            lines.append(f"{'  ' * (depth + 2)}at {frame}")
    return "\n".join(lines)
