"""Formatting stacks so that they point at the user's code."""

from __future__ import annotations

import os
import types
from collections.abc import Iterable

import trio

__all__ = ["format_frames", "is_framework_file", "user_frame"]

_FRAMEWORK_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (trio, __import__("triactor"), __import__("outcome"))
    if module.__file__
)


def is_framework_file(filename: str) -> bool:
    """True for files of Trio, triactor or outcome: frames a user did not write."""
    return filename.startswith(_FRAMEWORK_DIRS)


def format_frames(frames: Iterable[tuple[types.FrameType, int]]) -> tuple[str, ...]:
    """Format (frame, line) pairs, outermost first, as ``file:line in function`` strings."""
    return tuple(
        f"{frame.f_code.co_filename}:{lineno} in {frame.f_code.co_name}" for frame, lineno in frames
    )


def user_frame(frames: list[tuple[types.FrameType, int]]) -> str | None:
    """The innermost frame outside Trio and triactor, as ``file:line in function``."""
    for frame, lineno in reversed(frames):
        if not is_framework_file(frame.f_code.co_filename):
            return f"{frame.f_code.co_filename}:{lineno} in {frame.f_code.co_name}"
    return None
