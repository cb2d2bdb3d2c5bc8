"""Sphinx configuration of triactor's documentation site.

Build it as CI does (warnings are errors, every cross-reference must resolve)::

    sphinx-build -W --keep-going -n -q -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

project = "triactor"
author = "the triactor authors"
copyright = "the triactor authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "reference_pages",
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "snippets", "README.md"]
root_doc = "index"

html_theme = "furo"
html_title = "triactor"
html_static_path: list[str] = []
html_show_sourcelink = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The public names are documented where users import them: ``triactor.Actor``, not
# ``triactor.actors._actor.Actor``. Private members never appear.
add_module_names = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_class_signature = "mixed"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False

# No network in CI: names from other projects are not linked, and not errors either.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(trio|outcome|attrs|cattrs|loguru|logging|types|typing|collections|abc|"
        r"contextlib|enum|socket|pytest|_pytest)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Any|Callable|Awaitable|AsyncIterator|Iterator|Iterable|Mapping|Sequence|"
        r"Coroutine|Self|TypeVar|T|T_co|R|P|ParamSpec|Hashable|Generator)",
    ),
    (
        r"py:.*",
        r"(int|float|str|bytes|bool|object|type|dict|list|tuple|set|frozenset|None|"
        r"BaseException|Exception|TypeError|ValueError|OSError|KeyError|RuntimeError|"
        r"TimeoutError|KeyboardInterrupt|SystemExit|NotImplementedError|LookupError)",
    ),
    (r"py:.*", r"(random|functools|trio_parallel|trio_asyncio|Logger)(\..*)?"),
    # Type variables and the private helpers that public signatures name; the docstrings
    # say what to pass or what comes back (an Actor subclass or a Supervisor; the context
    # manager of ``async with pool.acquire()``; a timer handle; a Router or Supervisor).
    (
        r"py:.*",
        r"(triactor\.(\w+\.)*_\w+\.)?(T|F|R|M|Spawnable|AcquireContext|ResourceContext|"
        r"Timer|SubtreeSpec)",
    ),
]
