"""``python -m benchmarks``: every benchmark table, in one process and one run."""

from . import bench_core, bench_pools


def main() -> None:
    """Run all benchmarks and print their tables."""
    bench_core.run()
    bench_pools.run()


if __name__ == "__main__":
    main()
