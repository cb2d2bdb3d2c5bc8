"""Running and embedding: actors behind a synchronous program."""

from concurrent.futures import ThreadPoolExecutor

import triactor
from examples.counter import Add, Total, tree


def main() -> None:
    with triactor.start_in_thread(tree()) as portal:  # Trio runs in a background thread
        portal.tell("counter", Add(2))  # by name, path or ref
        assert portal.ask("counter", Total(), timeout=1.0) == 2

        with ThreadPoolExecutor(8) as threads:  # any number of threads at once
            list(threads.map(lambda n: portal.tell("counter", Add(1)), range(100)))
        print("total:", portal.ask("counter", Total(), timeout=1.0))
        assert portal.ask("counter", Total(), timeout=1.0) == 102
    # Leaving the block shut the system down gracefully and joined the thread.


if __name__ == "__main__":
    main()
