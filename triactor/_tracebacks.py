"""Compact tracebacks for logs: the user's frames, with triactor's own frames folded.

A crash deep inside an actor has a dozen frames of triactor and Trio (the mailbox loop, the
supervisor, the thread hand-off) around the two or three frames that matter to the person
reading it. :func:`format_exception` keeps those, folds each run of library frames into one
line, bounds every part (frames, chained exceptions, notes, sub-exceptions), and never shows
local variables: the result of one crash stays well under 25 lines. ``full=True`` gives the
standard Python traceback instead (still without local variables).
"""

from __future__ import annotations

import contextlib
import os
import traceback

import outcome
import trio

from ._safe import safe_str

__all__ = ["failure_signature", "format_exception"]

_WHOLE = 1 << 62  # safe_str without a length limit

# Where the folded frames come from (package directories, one module), each with the name a
# fold line shows.
_LIBRARIES = (
    (os.path.dirname(os.path.abspath(__file__)) + os.sep, "triactor"),
    (os.path.dirname(os.path.abspath(trio.__file__)) + os.sep, "trio"),
    (os.path.dirname(os.path.abspath(outcome.__file__)) + os.sep, "outcome"),
    (os.path.abspath(contextlib.__file__), "contextlib"),
)
_IMPORTLIB = "<frozen importlib"

_MAX_CHAIN = 3  # exceptions shown of a __cause__/__context__ chain (the last ones)
_HEAD, _TAIL = 2, 5  # a long stack shows its first _HEAD and last _TAIL unfolded frames
_CHAINED_FRAMES = 2  # frames shown for an earlier exception of a chain
_MAX_NOTES = 3
_MAX_SUBGROUPS = 3  # sub-exceptions shown of an exception group
_MAX_DEPTH = 2  # nesting of exception groups rendered

_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _library(filename: str) -> str | None:
    """The name of the library a frame's file belongs to, or None for the user's code."""
    if filename.startswith(_IMPORTLIB):
        return "importlib"
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    for directory, name in _LIBRARIES:
        if path.startswith(directory):
            return name
    return None


def format_exception(error: BaseException, *, full: bool = False) -> str:
    """Render ``error`` and its chain as a traceback for a log record (no trailing newline).

    The compact form (the default) keeps the user's frames and folds each run of triactor's,
    Trio's and importlib's frames into one ``[N frames in triactor, trio]`` line; the
    innermost frame, where the error was raised, is always shown. Long stacks keep their
    first and last frames; chains (``raise ... from``, errors during handling) keep their
    last three exceptions, consecutive identical ones counted instead of repeated; groups
    show their first sub-exceptions. ``full=True`` returns Python's own full traceback.
    Local variable values are never shown.
    """
    if full:
        return "".join(traceback.format_exception(error)).rstrip("\n")
    lines: list[str] = []
    _render_chain(error, lines, depth=0)
    return "\n".join(lines)


def failure_signature(error: BaseException) -> tuple[str, str, str, int]:
    """What makes two failures "the same": the type, the text and where it was raised."""
    frames = traceback.extract_tb(error.__traceback__, limit=None)
    where = (frames[-1].filename, frames[-1].lineno or 0) if frames else ("", 0)
    return (type(error).__qualname__, safe_str(error), *where)


def _chain(error: BaseException) -> list[tuple[BaseException, str | None]]:
    """The chain ending with ``error``, oldest first, each with the line printed after it."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    chain.reverse()
    return chain


def _same(a: BaseException, b: BaseException) -> bool:
    return type(a) is type(b) and failure_signature(a) == failure_signature(b)


def _render_chain(error: BaseException, lines: list[str], depth: int) -> None:
    chain = _chain(error)
    # Consecutive identical exceptions (a retry failing the same way each time) count once.
    collapsed: list[tuple[BaseException, str | None, int]] = []
    for exc, link in chain:
        if collapsed and _same(collapsed[-1][0], exc):
            collapsed[-1] = (exc, link, collapsed[-1][2] + 1)
        else:
            collapsed.append((exc, link, 1))
    if len(collapsed) > _MAX_CHAIN:
        lines.append(f"[{len(collapsed) - _MAX_CHAIN} earlier exceptions of the chain omitted]")
        collapsed = collapsed[-_MAX_CHAIN:]
    last = len(collapsed) - 1
    for index, (exc, link, times) in enumerate(collapsed):
        _render_one(exc, lines, depth, frames=None if index == last else _CHAINED_FRAMES)
        if times > 1:
            lines.append(f"[the same exception {times} times in a row]")
        if link is not None:
            lines.append(link)


def _render_one(error: BaseException, lines: list[str], depth: int, frames: int | None) -> None:
    stack = traceback.extract_tb(error.__traceback__)
    if stack:
        lines.append("Traceback (most recent call last):")
        lines.extend(_frame_lines(stack, frames))
    lines.extend(_exception_only(error))
    if isinstance(error, BaseExceptionGroup):
        _render_group(error, lines, depth)


def _exception_only(error: BaseException) -> list[str]:
    """``Type: message`` and the first notes, one list item per line."""
    text = "".join(traceback.format_exception_only(type(error), error)).rstrip("\n")
    found = text.split("\n")
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list | tuple) and len(notes) > _MAX_NOTES:
        # format_exception_only appends the notes, one line (or more) each, at the end.
        hidden = notes[_MAX_NOTES:]
        lines = sum(len(safe_str(note, _WHOLE).split("\n")) for note in hidden)
        found = found[: len(found) - lines]
        found.append(f"[{len(hidden)} more notes]")
    return found


def _frame_lines(stack: traceback.StackSummary, limit: int | None) -> list[str]:
    """The frames of one traceback with the hidden ones folded, a line per folded run.

    Shown: the user's frames and the innermost frame; of many, the first and last few (or,
    with ``limit``, only the innermost ``limit``). Each run of hidden frames becomes one line.
    """
    frames = list(stack)
    last = len(frames) - 1
    visible = [i for i, frame in enumerate(frames) if i == last or _library(frame.filename) is None]
    if limit is not None:
        visible = visible[-limit:]
    elif len(visible) > _HEAD + _TAIL:
        visible = visible[:_HEAD] + visible[-_TAIL:]
    shown = set(visible)
    lines: list[str] = []
    run: list[traceback.FrameSummary] = []
    for index, frame in enumerate(frames):
        if index not in shown:
            run.append(frame)
            continue
        if run:
            lines.append(_fold_line(run))
            run = []
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    if run:
        lines.append(_fold_line(run))
    return lines


def _fold_line(run: list[traceback.FrameSummary]) -> str:
    names = list(dict.fromkeys(_library(frame.filename) for frame in run))
    count = f"{len(run)} frame{'s' if len(run) > 1 else ''}"
    if None in names:
        return f"  [{count} more]"
    return f"  [{count} in {', '.join(name for name in names if name)}]"


def _render_group(group: BaseExceptionGroup[BaseException], lines: list[str], depth: int) -> None:
    subs = group.exceptions
    if depth >= _MAX_DEPTH:
        lines.append(f"  [{len(subs)} sub-exceptions not shown]")
        return
    for number, sub in enumerate(subs[:_MAX_SUBGROUPS], 1):
        lines.append(f"  +-- sub-exception {number} of {len(subs)}:")
        nested: list[str] = []
        _render_chain(sub, nested, depth + 1)
        lines.extend(f"  | {line}" for line in nested)
    if len(subs) > _MAX_SUBGROUPS:
        lines.append(f"  [{len(subs) - _MAX_SUBGROUPS} more sub-exceptions]")
