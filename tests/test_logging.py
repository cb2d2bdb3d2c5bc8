"""triactor's logging in a library setting: the standard ``logging`` module routes and silences
it, message contents stay out of it, a crash is a compact record, a start failure that repeats
is logged once with a count, and the loguru route keeps module names for ``logger.disable``."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import loguru
import pytest
import trio
import trio.testing
from launcher_fixtures import secrets

import triactor
from triactor import (
    Actor,
    ChildSpec,
    DeadLetterReason,
    Overflow,
    RestartIntensityExceeded,
    Supervisor,
    _logging,
    handler,
    open_actor_system,
)
from triactor.actors import _dead_letters
from triactor.diagnostics import format_snapshot
from triactor.launcher import run_tree, start_in_thread
from triactor.launcher._introspection import request_status

if TYPE_CHECKING:
    from loguru import Message

TESTS_DIR = Path(__file__).parent
PACKAGE = TESTS_DIR.parent / "triactor"
FORMAT = "%(levelname)s %(name)s %(actor)s %(message)s"


class ActorFormatter(logging.Formatter):
    """A formatter for records with or without an ``actor``, as an application would write."""

    def format(self, record: logging.LogRecord) -> str:
        record.actor = getattr(record, "actor", "-")
        return super().format(record)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test starts from the default route and settings, and leaves them so."""
    route, full, contents = _logging.settings()
    triactor_level = logging.getLogger("triactor").level
    yield
    triactor.configure_logging(to=route, full_tracebacks=full, message_contents=contents)
    logging.getLogger("triactor").setLevel(triactor_level)
    loguru.logger.enable("triactor")


def formatted(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as an application's handler would write it."""
    formatter = ActorFormatter(FORMAT)
    return "\n".join(formatter.format(record) for record in caplog.records)


async def run_shop() -> RestartIntensityExceeded:
    with pytest.raises(RestartIntensityExceeded) as caught:
        await run_tree(secrets.shop, handle_signals=False)
    return caught.value


# -- the standard logging module routes and silences triactor -----------------------------------


async def test_records_go_to_standard_loggers_named_after_the_module(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="triactor")
    await run_shop()
    [crash] = [r for r in caplog.records if "crashed:" in r.getMessage()]
    assert crash.name == "triactor.supervision._supervisor"
    assert crash.levelno == logging.ERROR
    assert crash.actor == "/shop"  # type: ignore[attr-defined]
    assert crash.exc_info is not None and isinstance(crash.exc_info[1], RuntimeError)
    assert crash.funcName == "_log_exit" and crash.pathname.endswith("_supervisor.py")
    started = [r for r in caplog.records if r.getMessage().startswith("tree /shop started")]
    assert started and started[0].levelno == logging.INFO
    assert started[0].name == "triactor.launcher._run"


async def test_the_triactor_logger_level_silences_it(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("triactor").setLevel(logging.CRITICAL)
    await run_shop()
    assert not [r for r in caplog.records if r.name.startswith("triactor")]


async def test_an_actors_own_log_goes_to_its_modules_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=__name__)
    async with open_actor_system() as system:
        await system.spawn(Chatty, name="chatty")
    [record] = [r for r in caplog.records if r.getMessage() == "chatty started"]
    assert record.name == __name__ and record.actor == "/chatty"  # type: ignore[attr-defined]


class Chatty(Actor):
    async def on_start(self) -> None:
        self.log.info("chatty started")
        self.log.success("chatty succeeded")  # loguru's SUCCESS is logging's INFO


def run_embedded(mode: str, tree: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "launcher_fixtures.embedded", mode, tree],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_an_embedded_system_prints_nothing_the_host_did_not_ask_for() -> None:
    out, err = run_embedded("none", "vault")
    assert (out, err) == ("done\n", "")


def test_an_unconfigured_host_sees_warnings_and_errors_only() -> None:
    out, err = run_embedded("none", "shop")
    assert out == "the shop gave up\ndone\n"
    assert "child /shop/payments crashed: RuntimeError('card declined (14 characters)')" in err
    assert "dead letter: Refund for /shop/payments (no handler)" in err
    assert "tree /shop started" not in err  # INFO
    assert secrets.SECRET not in err


def test_basic_config_chooses_the_level_and_format() -> None:
    _, err = run_embedded("basic-error", "shop")
    assert "ERROR:triactor.supervision._supervisor:child /shop/payments crashed" in err
    assert "dead letter" not in err  # a WARNING


def test_the_triactor_logger_silences_an_embedded_system() -> None:
    out, err = run_embedded("silence", "shop")
    assert (out, err) == ("the shop gave up\ndone\n", "")


# -- no message contents by default -------------------------------------------------------------


async def test_no_secret_in_any_record_or_report_by_default(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="triactor")
    error = await run_shop()
    text = formatted(caplog)
    assert "dead letter: Refund for /shop/payments (no handler)" in text
    assert "dead letter: Charge for /shop/payments (actor crashed while handling it)" in text
    assert "card declined" in text
    assert secrets.SECRET not in text
    assert "card declined" in error.report()
    assert secrets.SECRET not in error.report()


async def test_message_contents_are_an_opt_in(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="triactor")
    triactor.configure_logging(message_contents=True)
    await run_shop()
    assert f"dead letter: Refund(card_token='{secrets.SECRET}')" in formatted(caplog)


def test_no_secret_in_a_snapshot_or_the_status_report() -> None:
    with start_in_thread(secrets.vault) as portal:
        snapshot = portal.call(_snapshot_text)
        report = request_status(os.getpid())
    assert "vault [processing] handling Deposit" in snapshot
    assert "vault [processing] handling Deposit" in report
    assert secrets.SECRET not in snapshot + report


async def _snapshot_text(system: triactor.ActorSystem) -> str:
    await trio.lowlevel.checkpoint()
    return format_snapshot(system.snapshot(stacks_older_than=0.0))


# -- a crash is one compact record --------------------------------------------------------------


async def test_a_crash_is_one_record_under_25_lines(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="triactor")
    await run_shop()
    formatter = ActorFormatter(FORMAT)
    [crash] = [formatter.format(r) for r in caplog.records if "crashed:" in r.getMessage()]
    lines = crash.splitlines()
    assert len(lines) < 25, crash
    assert 'secrets.py", line' in crash and "in charge" in crash  # the user's frame
    assert "_cell.py" not in crash  # triactor's frames are folded
    assert re.search(r"\[\d+ frames in triactor", crash)
    assert lines[-1] == "raised in actor '/shop/payments' while handling Charge"


async def test_full_tracebacks_are_an_opt_in(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="triactor")
    triactor.configure_logging(full_tracebacks=True)
    error = await run_shop()
    crash = next(r for r in caplog.records if "crashed:" in r.getMessage())
    assert "_cell.py" in ActorFormatter(FORMAT).format(crash)
    assert "_cell.py" in error.report()


async def test_a_repeated_start_failure_is_logged_once_with_a_count(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triactor")
    with pytest.raises(RestartIntensityExceeded) as caught:
        await run_tree(secrets.typo, handle_signals=False)
    text = formatted(caplog)
    assert text.count("failed to start") == 2  # the first failure, and the give-up's count
    assert "failed to start 4 times in a row this same way" in text
    assert text.count("Traceback") == 1
    assert "During handling" not in text and "[the same exception" not in text
    # Each retry's error stands alone: no chain of every earlier attempt.
    last = caught.value.last_error
    assert last is not None and last.__context__ is None


async def test_a_child_that_starts_after_repeated_failures_says_so(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triactor")
    Flaky.failures_left = 3
    tree = Supervisor("app", [ChildSpec(Flaky, name="flaky")], max_restarts=5, within=60)
    async with open_actor_system() as system:
        await system.spawn(tree)
    text = formatted(caplog)
    assert text.count("Traceback") == 1
    assert "child /app/flaky started after failing 3 times in a row" in text


class Flaky(Actor):
    failures_left = 0

    async def on_start(self) -> None:
        if Flaky.failures_left:
            Flaky.failures_left -= 1
            raise ConnectionError("the database is not up yet")


# -- the loguru route ---------------------------------------------------------------------------


async def test_the_loguru_route_keeps_module_names_for_disable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    records: list[dict[str, object]] = []

    def keep(message: Message) -> None:
        records.append(message.record)  # type: ignore[arg-type]

    sink = loguru.logger.add(keep, level="DEBUG")
    try:
        triactor.configure_logging(to="loguru")
        await run_shop()
        async with open_actor_system() as system:
            await system.spawn(Chatty, name="chatty")
        crash = next(r for r in records if "crashed:" in str(r["message"]))
        assert crash["name"] == "triactor.supervision._supervisor"
        assert crash["function"] == "_log_exit"
        assert crash["extra"] == {"actor": "/shop"}
        chatty = next(r for r in records if r["message"] == "chatty started")
        assert chatty["name"] == __name__ and chatty["function"] == "on_start"
        # logger.disable("triactor") silences triactor, not the application's actors.
        records.clear()
        loguru.logger.disable("triactor")
        await run_shop()
        async with open_actor_system() as system:
            await system.spawn(Chatty, name="chatty")
        assert [r["message"] for r in records] == ["chatty started", "chatty succeeded"]
    finally:
        loguru.logger.remove(sink)


def test_configure_logging_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="'logging' or 'loguru'"):
        triactor.configure_logging(to="stderr")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a bool"):
        triactor.configure_logging(full_tracebacks="yes")  # type: ignore[arg-type]


# -- cost ---------------------------------------------------------------------------------------


@attrs.frozen
class Flood:
    n: int


class Sleeper(Actor):
    mailbox_capacity = 1
    overflow = Overflow.DROP_NEWEST

    @handler
    async def flood(self, msg: Flood) -> None:
        await trio.sleep_forever()


async def test_a_dead_letter_nobody_would_see_makes_no_record(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class NoRecords:
        def bind(self, **extra: object) -> None:
            raise AssertionError("a record was made although nobody would see it")

    caplog.set_level(logging.INFO, logger="triactor")
    async with open_actor_system() as system:
        sleeper = await system.spawn(Sleeper, name="sleeper")
        with monkeypatch.context() as patched:
            patched.setattr(_dead_letters, "logger", NoRecords())
            for n in range(100):
                await sleeper.tell(Flood(n))
        assert system.dead_letters.count_by_reason()[DeadLetterReason.DROPPED_NEWEST] >= 98
        system.abort()
    # With DEBUG on, the same drops are logged.
    caplog.set_level(logging.DEBUG, logger="triactor")
    async with open_actor_system() as system:
        sleeper = await system.spawn(Sleeper, name="sleeper")
        for n in range(3):
            await sleeper.tell(Flood(n))
        system.abort()
    assert "dead letter: Flood for /sleeper (dropped: mailbox full (DROP_NEWEST))" in (
        formatted(caplog)
    )


def test_every_triactor_module_logs_through_triactors_logger() -> None:
    # loguru's global logger prints to stderr by default: only the launcher may write there.
    allowed = {PACKAGE / "_logging.py", PACKAGE / "launcher" / "_logging.py"}
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path not in allowed
        and re.search(r"from loguru import .*\blogger\b|loguru\.logger", path.read_text())
    ]
    assert offenders == []
