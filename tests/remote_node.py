"""A node process for the multi-process cluster tests: ``python -m tests.remote_node ...``.

It hosts ``Worker`` (exported) under a supervisor; the worker records every job it handles in
a file, one id per line, written unbuffered so that a SIGKILL loses nothing already handled.
It prints ``ready`` once the tree runs.
"""

from __future__ import annotations

import argparse
import sys

import triactor
from tests.remote_actors import Worker
from triactor import ChildSpec, Supervisor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--record", required=True)
    parser.add_argument("--claim-after", type=float, default=2.0)
    parser.add_argument("--max-deliveries", type=int, default=5)
    args = parser.parse_args()
    cluster = triactor.Cluster(
        args.url,
        name=args.cluster,
        node=args.node,
        claim_after=args.claim_after,
        max_deliveries=args.max_deliveries,
    )
    tree = Supervisor(
        "root",
        [ChildSpec(Worker, args=(args.record,), name=args.name, export=True)],
        max_restarts=1000,
        within=1.0,
    )

    async def announce(system: triactor.ActorSystem, root: triactor.ActorRef) -> None:
        print("ready", flush=True)

    result = triactor.run(tree, cluster=cluster, monitor=announce, shutdown_timeout=10)
    sys.exit(0 if result.clean else 1)


if __name__ == "__main__":
    main()
