"""Running and embedding: a tree as a program, with triactor.run."""

import triactor
from examples.counter import Add, Total, tree
from triactor import ActorRef, ActorSystem


async def demo(system: ActorSystem, root: ActorRef) -> None:
    """Runs beside the tree (``monitor=``); a real program would wait for Ctrl-C instead."""
    counter = system.lookup("counter")
    await counter.tell(Add(40))
    print("total:", await counter.ask(Total()))
    await root.stop()


def main() -> None:
    # Ctrl-C or SIGTERM: a graceful shutdown within shutdown_timeout; a second one: at once.
    result = triactor.run(tree(), shutdown_timeout=10.0, monitor=demo)
    print(result)
    assert result.clean


if __name__ == "__main__":
    main()
