"""A synchronous program embedding triactor with ``start_in_thread``, as a web service would.

    python -m launcher_fixtures.embedded MODE TREE

MODE sets up the standard ``logging`` module first: ``none`` (no configuration at all),
``basic-error`` (``logging.basicConfig(level=logging.ERROR)``) or ``silence``
(``logging.getLogger("triactor").setLevel(logging.CRITICAL)``). TREE is ``shop`` (crashes
until its root gives up) or ``vault`` (runs cleanly until the block is left).
"""

from __future__ import annotations

import logging
import sys

from launcher_fixtures import secrets
from triactor import RestartIntensityExceeded, start_in_thread


def main(mode: str, tree: str) -> None:
    if mode == "basic-error":
        logging.basicConfig(level=logging.ERROR)
    elif mode == "silence":
        logging.getLogger("triactor").setLevel(logging.CRITICAL)
    try:
        with start_in_thread(getattr(secrets, tree)) as portal:
            if tree == "vault":
                portal.statistics()
            else:
                portal.wait(timeout=10)
    except RestartIntensityExceeded:
        print("the shop gave up", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
