"""The ``triactor`` command: ``triactor run module:attr`` and ``triactor tree module:attr``."""

from __future__ import annotations

import argparse
import functools
import importlib
import json as jsonlib
import math
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn, TextIO

import trio

from .._errors import RestartIntensityExceeded
from .._logging import logger
from ..actors import ActorSystem
from ..diagnostics import MetricsPortError
from ..remote import Cluster
from ..supervision import Supervisor
from ._introspection import (
    NotATriactorProcess,
    StatusWriter,
    render_status,
    request_status,
    status_json,
)
from ._loading import TargetError, TargetFailed, build_tree
from ._logging import LEVELS, configure_logging
from ._run import Monitor, RunResult, run_tree
from ._status import StatusLine
from ._tree_view import render_tree

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNCLEAN",
    "EXIT_USAGE",
    "build_parser",
    "exit_code",
    "main",
]

#: Exit codes of ``triactor run``, besides 128 + N after a second signal N.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNCLEAN = 0, 1, 2, 3

_DEFAULT_SHUTDOWN_TIMEOUT = 10.0
_DEFAULT_BLOCKING_THRESHOLD = 0.1

_DESCRIPTION = """\
Run a triactor supervision tree as a program, or draw it.

TARGET is module:attr, where attr is a triactor.Supervisor or a function (sync or async)
that takes no arguments and returns one; the module is imported from the current directory
or sys.path, e.g. `triactor run myapp.main:tree`.
"""

_RUN_EPILOG = """\
SIGINT (Ctrl-C) or SIGTERM stops the tree gracefully: actors stop in reverse start order,
each finishing its mailbox, within --shutdown-timeout; a second signal cancels them at once.

exit codes: 0 clean stop; 1 the root supervisor gave up (a report follows) or the tree
failed to start; 2 a bad TARGET or option; 3 stopped, but not cleanly: queued messages were
dropped or actors cancelled at a deadline (theirs or --shutdown-timeout); 128+N stopped at
once by a second signal N (130 for SIGINT, 143 for SIGTERM).
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``triactor run: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    """A number of seconds >= 0; ``inf`` for no limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text!r}")
    return value


def _finite_seconds(text: str) -> float:
    """A finite number of seconds >= 0."""
    value = _seconds(text)
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    """A finite number of seconds > 0."""
    value = _finite_seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _port(text: str) -> int:
    """A TCP port number, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 0 to 65535, got {text!r}")
    return value


def _pid(text: str) -> int:
    """A process id (a positive integer)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a process id (a positive number), got {text!r}")
    return value


def _version() -> str:
    try:
        return version("triactor")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The command line parser of ``triactor`` (its ``run`` and ``tree`` subcommands)."""
    parser = _Parser(
        prog="triactor",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"triactor {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a supervision tree until it stops or is signalled",
        description="Run the supervision tree TARGET (module:attr) until it stops.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("target", metavar="TARGET", help="module:attr naming the tree")
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        default="INFO",
        metavar="LEVEL",
        help=f"the least severe log level shown: {', '.join(LEVELS)} (default: INFO)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="write everything on stderr as JSON lines: log records, the SIGUSR1 snapshot, "
        "errors and the final report",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show whole tracebacks; by default a crash shows the application's frames and "
        "folds triactor's",
    )
    run.add_argument(
        "--message-contents",
        action="store_true",
        help="include the contents of messages in log lines (dead letters); off by default, "
        "as messages may hold personal data or secrets",
    )
    run.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=_DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="how long the graceful shutdown may take before what is left is cancelled "
        f"(default: {_DEFAULT_SHUTDOWN_TIMEOUT:g}; 'inf' for no deadline)",
    )
    run.add_argument(
        "--status",
        choices=("auto", "on", "off"),
        default="auto",
        help="the live status line on stderr: auto shows it only when stderr is a terminal "
        "and logs are not JSON; it cannot be on with --json (default: auto)",
    )
    run.add_argument(
        "--blocking-threshold",
        type=_finite_seconds,
        default=_DEFAULT_BLOCKING_THRESHOLD,
        metavar="SECONDS",
        help="warn (with the line and the stack) when a task holds the event loop this long "
        f"without yielding (default: {_DEFAULT_BLOCKING_THRESHOLD:g}; 0 turns it off)",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: any free port)",
    )
    run.add_argument(
        "--cluster",
        default=os.environ.get("TRIACTOR_CLUSTER") or None,
        metavar="URL",
        help="join the cluster on this Redis/Valkey server (redis://host:port/db or "
        "unix:///path.sock): children with export=True become reachable from other "
        "processes (default: $TRIACTOR_CLUSTER, else none)",
    )
    run.add_argument(
        "--cluster-name",
        default=os.environ.get("TRIACTOR_CLUSTER_NAME") or "triactor",
        metavar="NAME",
        help="which cluster on that server to join (default: $TRIACTOR_CLUSTER_NAME, else "
        "'triactor')",
    )
    run.add_argument(
        "--node",
        default=os.environ.get("TRIACTOR_NODE") or None,
        metavar="NAME",
        help="this process's node name in the cluster; give a stable one to a process that "
        "restarts (default: $TRIACTOR_NODE, else host and pid)",
    )
    run.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        metavar="N",
        help="run the tree in N worker processes joined to the cluster (a private server "
        "when --cluster is not given): exported names become competing consumers, spread over "
        "the cores; a worker that dies is restarted",
    )
    run.add_argument(
        "--asyncio",
        action="store_true",
        help="run an asyncio loop beside the actors, so that handlers can await asyncio "
        "libraries with triactor.run_asyncio (needs the triactor[asyncio] extra)",
    )
    run.set_defaults(handler=_run_command)

    status = commands.add_parser(
        "status",
        help="print what every actor of a running triactor process is doing",
        description="Ask the process PID for a snapshot of its actors: state, mailbox, counts, "
        "the type of the message being handled and for how long, and the await stacks of "
        "handlers busy for a second or more. It reads the status socket that `triactor run`, "
        "triactor.run and start_in_thread open (in a directory private to your user) and "
        "sends no signal: a process that runs no triactor tree is refused (exit 2) and left "
        "alone.",
    )
    status.add_argument("pid", type=_pid, metavar="PID", help="the process id")
    status.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for the answer (default: 5)",
    )
    status.set_defaults(handler=_status_command)

    tree = commands.add_parser(
        "tree",
        help="draw a supervision tree without running it",
        description="Draw the supervision tree TARGET (module:attr) without running it: "
        "names, strategies, restart types and intensities.",
    )
    tree.add_argument("target", metavar="TARGET", help="module:attr naming the tree")
    tree.add_argument("--ascii", action="store_true", help="draw with ASCII characters only")
    tree.set_defaults(handler=_tree_command)
    return parser


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _error(message: str) -> None:
    print(f"triactor: error: {message}", file=sys.stderr)


_HIDDEN_DIRS = (
    os.path.dirname(importlib.__file__) + os.sep,
    os.path.dirname(__file__) + os.sep,
)


def _is_internal(filename: str) -> bool:
    return filename.startswith(("<frozen importlib", *_HIDDEN_DIRS))


def _user_traceback(error: BaseException) -> str:
    """``error``'s traceback without the frames of importlib and the launcher."""
    summary = traceback.TracebackException.from_exception(error)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if not _is_internal(frame.filename)]
    )
    return "".join(summary.format()).rstrip("\n")


def _report_failed_target(failure: TargetFailed, *, json: bool = False) -> int:
    if json:
        logger.opt(exception=failure.__cause__).critical("{}", failure)
        return EXIT_FAILED
    _error(str(failure))
    if failure.__cause__ is not None:
        print(_user_traceback(failure.__cause__), file=sys.stderr)
    return EXIT_FAILED


def _fail(message: str, *, json: bool) -> None:
    """A run's fatal error: one line, or one JSON record under ``--json``."""
    if json:
        logger.critical("{}", message)
    else:
        _error(message)


def _report_gave_up(error: RestartIntensityExceeded, *, json: bool) -> int:
    report = error.report()
    if json:
        logger.bind(supervisor=error.supervisor, child=error.child).critical(
            "the root supervisor gave up; exit code {}\n{}", EXIT_FAILED, report
        )
    else:
        print(
            f"\ntriactor: the root supervisor gave up; exiting with code {EXIT_FAILED}.\n\n"
            f"{report}",
            file=sys.stderr,
        )
    return EXIT_FAILED


def exit_code(result: RunResult) -> int:
    """The exit code of ``triactor run`` for a run that ended with ``result``.

    0 after a clean stop; 128 + N when a second signal N cut the shutdown short; 3 when the
    shutdown dropped queued messages or cancelled actors (at their own deadline or at
    ``--shutdown-timeout``).
    """
    if result.clean:
        return EXIT_OK
    try:
        return 128 + signal.Signals[result.aborted_by or ""].value
    except KeyError:
        return EXIT_UNCLEAN


async def _run_target(
    args: argparse.Namespace, monitor: Monitor, status_report: StatusWriter
) -> RunResult:
    tree = await build_tree(args.target)
    return await run_tree(
        tree,
        handle_signals=True,
        shutdown_timeout=None if math.isinf(args.shutdown_timeout) else args.shutdown_timeout,
        monitor=monitor,
        blocking_threshold=args.blocking_threshold or None,
        metrics_port=args.metrics_port,
        cluster=args.cluster,
        status_report=status_report,
        asyncio=args.asyncio,
    )


def _worker_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


def _workers_command(args: argparse.Namespace) -> int:
    """``triactor run TARGET --workers N``: supervise N worker processes of the tree."""
    from ._workers import run_workers

    if args.cluster is not None:
        try:
            Cluster(args.cluster, name=args.cluster_name)
        except (TypeError, ValueError) as exc:
            _error(f"--cluster: {exc}")
            return EXIT_USAGE
    if args.metrics_port is not None:
        _error("--metrics-port serves one process; it cannot be combined with --workers")
        return EXIT_USAGE
    if args.cluster is None:
        from ..remote._server import find_server_binary

        try:
            find_server_binary()  # before anything starts: say what to install
        except FileNotFoundError as exc:
            _error(str(exc))
            return EXIT_USAGE
    tty = _isatty(sys.stderr)

    def write(text: str) -> None:
        sys.stderr.write(text)

    configure_logging(
        write,
        level=args.log_level,
        json=args.json,
        colorize=tty,
        full_tracebacks=args.verbose,
        message_contents=args.message_contents,
    )
    options = [
        "--log-level",
        args.log_level,
        "--shutdown-timeout",
        str(args.shutdown_timeout),
        "--blocking-threshold",
        str(args.blocking_threshold),
        "--status",
        "off",
        *(["--json"] if args.json else []),
        *(["--asyncio"] if args.asyncio else []),
    ]
    try:
        return trio.run(
            functools.partial(
                run_workers,
                args.target,
                args.workers,
                cluster=args.cluster,
                cluster_name=args.cluster_name,
                node_prefix=args.node,
                worker_options=options,
            )
        )
    except FileNotFoundError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 128 + signal.SIGINT.value


def _cluster(args: argparse.Namespace) -> Cluster | None:
    """The cluster the options name, or None (validated: a bad one is a usage error)."""
    if args.cluster is None:
        return None
    return Cluster(args.cluster, name=args.cluster_name, node=args.node)


def _status_command(args: argparse.Namespace) -> int:
    try:
        print(request_status(args.pid, args.timeout), end="")
    except ProcessLookupError:
        _error(f"no process {args.pid}")
        return EXIT_USAGE
    except NotATriactorProcess as exc:
        _error(str(exc))
        return EXIT_USAGE
    except OSError as exc:  # a timeout, a refused or broken connection
        _error(str(exc))
        return EXIT_FAILED
    return EXIT_OK


def _status_writer(status: StatusLine, *, json: bool) -> StatusWriter:
    """What SIGUSR1 does under ``triactor run``: the snapshot, through the status line."""

    def write(system: ActorSystem) -> None:
        if json:
            status.write(jsonlib.dumps(status_json(system)) + "\n")
        else:
            status.write(render_status(system))

    return write


def _run_command(args: argparse.Namespace) -> int:
    if args.workers is not None:
        return _workers_command(args)
    try:
        args.cluster = _cluster(args)
    except (TypeError, ValueError) as exc:
        _error(f"--cluster: {exc}")
        return EXIT_USAGE
    if args.json and args.status == "on":
        _error("--status on cannot be used with --json: JSON output holds no status line")
        return EXIT_USAGE
    tty = _isatty(sys.stderr)
    status = StatusLine(
        sys.stderr,
        enabled=args.status == "on" or (args.status == "auto" and tty and not args.json),
    )
    configure_logging(
        status.write,
        level=args.log_level,
        json=args.json,
        colorize=tty,
        full_tracebacks=args.verbose,
        message_contents=args.message_contents,
    )
    try:
        result = trio.run(_run_target, args, status.run, _status_writer(status, json=args.json))
    except TargetError as exc:
        _fail(str(exc), json=args.json)
        return EXIT_USAGE
    except TargetFailed as exc:
        return _report_failed_target(exc, json=args.json)
    except RestartIntensityExceeded as exc:
        return _report_gave_up(exc, json=args.json)
    except MetricsPortError as exc:
        _fail(str(exc), json=args.json)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted before the tree started", json=args.json)
        return 128 + signal.SIGINT.value
    except Exception as exc:
        logger.opt(exception=exc).critical("the tree failed: {!r}", exc)
        return EXIT_FAILED
    code = exit_code(result)
    if result.aborted_by is not None:
        logger.error(
            "the shutdown was cut short ({}); exiting with code {}", result.aborted_by, code
        )
    elif code != EXIT_OK:
        logger.error(
            "the shutdown dropped {} queued messages and cancelled {} actors; exiting with code {}",
            result.dropped,
            result.cancelled,
            code,
        )
    return code


def _can_draw_boxes(stream: TextIO) -> bool:
    try:
        "├└│±".encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _tree_command(args: argparse.Namespace) -> int:
    try:
        tree: Supervisor = trio.run(build_tree, args.target)
    except TargetError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except TargetFailed as exc:
        return _report_failed_target(exc)
    ascii_only = args.ascii or not _can_draw_boxes(sys.stdout)
    print(render_tree(tree, ascii_only=ascii_only))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The ``triactor`` command; returns the exit code (the console script exits with it).

    ``triactor run module:attr`` runs a tree (see ``triactor run --help``);
    ``triactor tree module:attr`` draws one. A bad target prints a one-line error and returns
    2, never a bare traceback.
    """
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code
