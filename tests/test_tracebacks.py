"""Compact tracebacks: the user's frames shown, library frames folded, every part bounded, no
variable values; the full form is Python's own."""

from __future__ import annotations

import traceback

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from triactor._tracebacks import failure_signature, format_exception


def caught(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("no exception")


def explode(secret: str) -> None:
    token = secret  # a local variable: never shown
    raise ValueError(f"bad input ({len(token)} characters)")


def test_the_users_frames_and_the_error_are_shown_without_variable_values() -> None:
    error = caught(explode, "sk-live-123456")
    text = format_exception(error)
    call, raised = caught.__code__.co_firstlineno + 2, explode.__code__.co_firstlineno + 2
    assert text.splitlines() == [
        "Traceback (most recent call last):",
        f'  File "{__file__}", line {call}, in caught',
        "    fn(*args)  # type: ignore[operator]",
        f'  File "{__file__}", line {raised}, in explode',
        '    raise ValueError(f"bad input ({len(token)} characters)")',
        "ValueError: bad input (14 characters)",
    ]
    assert "sk-live" not in text


def test_library_frames_fold_into_one_line_but_the_raising_frame_stays() -> None:
    async def main() -> None:
        await trio.sleep(-1)  # trio raises ValueError itself

    error = caught(trio.run, main)
    text = format_exception(error)
    lines = text.splitlines()
    assert any(line.startswith("  [") and "in trio" in line for line in lines), text
    assert "in main" in text  # the user's frame
    assert "trio" in lines[-3] and lines[-1].startswith("ValueError")  # where it was raised
    assert len(lines) < 12


def recurse(n: int) -> int:
    return recurse(n + 1)


def test_a_deep_stack_keeps_its_first_and_last_frames() -> None:
    error = caught(recurse, 0)
    lines = format_exception(error).splitlines()
    assert len(lines) < 25
    assert lines[-1].startswith("RecursionError")
    assert any(line.startswith("  [") and line.endswith("more]") for line in lines)


def retry_three_times() -> None:
    # Each attempt fails inside the handling of the previous one: a chain of identical errors.
    def attempt(left: int) -> None:
        try:
            raise ConnectionError("refused")
        except ConnectionError:
            if left:
                attempt(left - 1)
            else:
                raise

    attempt(3)


def test_identical_chained_errors_are_counted_not_repeated() -> None:
    text = format_exception(caught(retry_three_times))
    assert text.count("ConnectionError: refused") == 1
    assert "[the same exception 4 times in a row]" in text
    assert "During handling" not in text


def test_a_chain_shows_its_last_exceptions_and_the_link() -> None:
    def chain() -> None:
        try:
            try:
                raise KeyError("first")
            except KeyError as exc:
                raise ValueError("second") from exc
        except ValueError:
            raise RuntimeError("third") from None

    def long_chain(depth: int) -> None:
        if depth == 0:
            raise OSError("root cause")
        try:
            long_chain(depth - 1)
        except Exception as exc:
            raise RuntimeError(f"level {depth}") from exc

    assert format_exception(caught(chain)).splitlines()[-1] == "RuntimeError: third"
    text = format_exception(caught(long_chain, 6))
    assert text.splitlines()[0] == "[4 earlier exceptions of the chain omitted]"
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.endswith("RuntimeError: level 6")
    assert "OSError" not in text


def test_notes_and_groups_are_bounded() -> None:
    def group() -> None:
        errors = [ValueError(f"error {n}") for n in range(5)]
        error = ExceptionGroup("five", errors)
        for n in range(6):
            error.add_note(f"note {n}")
        raise error

    text = format_exception(caught(group))
    assert "ExceptionGroup: five (5 sub-exceptions)" in text
    assert "note 2" in text and "note 3" not in text and "[3 more notes]" in text
    assert "  | ValueError: error 2" in text and "error 3" not in text
    assert "[2 more sub-exceptions]" in text


def test_full_is_pythons_own_traceback() -> None:
    error = caught(explode, "x")
    assert format_exception(error, full=True) == "".join(traceback.format_exception(error)).strip()


def test_the_signature_tells_identical_failures_apart() -> None:
    first, second = caught(explode, "a"), caught(explode, "b")
    assert failure_signature(first) == failure_signature(second)  # same text, same line
    assert failure_signature(first) != failure_signature(caught(explode, "ab"))
    assert failure_signature(ValueError("never raised"))[2:] == ("", 0)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_nested_groups_stay_bounded(depth: int) -> None:
    def nest(level: int) -> BaseException:
        if level == 0:
            return caught(explode, "x")
        return ExceptionGroup(f"level {level}", [nest(level - 1) for _ in range(4)])

    text = format_exception(nest(depth))
    assert len(text.splitlines()) < 120
    assert "sk-live" not in text


@given(st.lists(st.sampled_from(["cause", "context", "suppressed"]), max_size=30))
def test_any_chain_stays_under_25_lines(links: list[str]) -> None:
    error: BaseException = caught(explode, "x")
    for number, link in enumerate(links):
        newer = RuntimeError(f"step {number}")
        if link == "cause":
            newer.__cause__ = error
        else:
            newer.__context__ = error
            newer.__suppress_context__ = link == "suppressed"
        error = caught(_raise, newer)
    text = format_exception(error)
    assert len(text.splitlines()) < 25
    assert text.splitlines()[-1] == f"{type(error).__name__}: {error}"


def _raise(error: BaseException) -> None:
    cause, context, suppress = error.__cause__, error.__context__, error.__suppress_context__
    try:
        raise error
    finally:
        # Raising sets the context again; keep the one the test built.
        error.__cause__, error.__context__ = cause, context
        error.__suppress_context__ = suppress
