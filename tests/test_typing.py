"""Typed refs: mypy, run on a small user program, flags a wrong message type and a wrong reply
type on refs of an ``Actor[M, R]``; the package ships ``py.typed``; and the class statement
checks that the declared message types have handlers."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import attrs
import pytest

import triactor
from triactor import Actor, handler

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "tests" / "typing_samples" / "user_code.py"


def test_mypy_flags_wrong_message_and_reply_types_and_nothing_else() -> None:
    pytest.importorskip("mypy")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(SAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    flagged = {
        int(match.group(1)) for match in re.finditer(r"user_code\.py:(\d+): error:", done.stdout)
    }
    lines = SAMPLE.read_text().splitlines()
    expected = {number for number, line in enumerate(lines, 1) if "# error:" in line}
    assert len(expected) == 7
    assert flagged == expected, done.stdout
    messages = done.stdout
    assert 'incompatible type "Flush"; expected "Fetch"' in messages  # the message type
    assert 'expression has type "Found", variable has type "str"' in messages  # the reply type


def test_the_package_is_marked_typed() -> None:
    assert (Path(triactor.__file__).parent / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["triactor"]


@attrs.frozen
class Ask:
    pass


@attrs.frozen
class Other:
    pass


def test_declared_message_types_need_handlers() -> None:
    class Good(Actor[Ask | Other, int]):
        @handler
        async def ask(self, msg: Ask) -> int:
            return 1

        @handler
        async def other(self, msg: Other) -> int:
            return 2

    assert Good.__triactor_handlers__.handled_types == (Ask, Other)
    with pytest.raises(TypeError, match=r"Bad declares Actor\[Other, \.\.\.\] but has no handler"):

        class Bad(Actor[Ask | Other, int]):
            @handler
            async def ask(self, msg: Ask) -> int:
                return 1
