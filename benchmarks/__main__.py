"""``python -m benchmarks [SECTION ...]``: benchmark tables, each run in one process and one run.

Every table prints ratios against floors measured in the same run. With no section, all run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from . import bench_core, bench_pools, bench_redis, bench_remote, bench_scale

SECTIONS: dict[str, tuple[Callable[[], None], str]] = {
    "core": (bench_core.run, "tell, ask, spawn+stop and fan-out against raw Trio"),
    "pools": (bench_pools.run, "priority pool waits and shares against a FIFO limiter"),
    "redis": (bench_redis.run, "the Redis connection layer against a raw socket"),
    "remote": (bench_remote.run, "tell and ask between two node processes over Redis"),
    "scale": (bench_scale.run, "a CPU-bound stage on one core against the CPU path"),
}


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen sections (all by default)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Print triactor's benchmark tables (ratios against floors measured in "
        "the same run).",
        epilog="sections: " + "; ".join(f"{name}: {text}" for name, (_, text) in SECTIONS.items()),
    )
    parser.add_argument(
        "sections",
        nargs="*",
        choices=[*SECTIONS, []],
        metavar="SECTION",
        help=f"which tables to print ({', '.join(SECTIONS)}); default: all",
    )
    args = parser.parse_args(argv)
    for name in args.sections or SECTIONS:
        SECTIONS[name][0]()


if __name__ == "__main__":
    main()
