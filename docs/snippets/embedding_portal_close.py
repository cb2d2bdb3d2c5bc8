"""Running and embedding: a portal kept open, as a web app (Flask, Django) keeps it."""

import triactor
from examples.counter import Add, Total, tree


def main() -> None:
    portal = triactor.start_in_thread(tree())  # e.g. at module level of the app
    portal.tell("counter", Add(1))  # from any request thread
    assert portal.ask("counter", Total(), timeout=1.0) == 1
    result = portal.close()  # graceful stop; done at interpreter exit otherwise
    assert result.clean


if __name__ == "__main__":
    main()
