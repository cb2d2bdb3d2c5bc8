"""``python -m triactor.launcher``: the ``triactor`` command without the console script."""

from ._cli import main

raise SystemExit(main())
