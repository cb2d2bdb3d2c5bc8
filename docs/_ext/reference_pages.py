"""Keeps the API reference complete: every public name gets an entry, automatically.

The reference pages (``docs/reference/*.md``) list the public names in a reading order, each
as an autodoc directive. A public name that no page lists yet (one just added to
``triactor.__all__``) is appended to the page that covers the module defining it, under
"More", so the reference never lags behind the code; the page's author can then move it to
its place. Names of a module no page covers go to the reference's index page.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).parents[1] / "reference"

# Page -> the modules (by prefix of the defining module) whose public names it documents.
PAGES: dict[str, tuple[str, ...]] = {
    "actors": ("triactor.actors", "triactor.mailbox"),
    "supervision": ("triactor.supervision",),
    "scaling": ("triactor.routing", "triactor.parallel"),
    "pools": ("triactor.pools",),
    "running": ("triactor.launcher", "triactor._logging", "triactor._asyncio"),
    "cluster": ("triactor.remote",),
    "errors": ("triactor._errors",),
    "diagnostics": ("triactor.diagnostics",),
}
FALLBACK = "index"

_ENTRY = re.compile(r"^\.\. auto(?:class|exception|function|data)::\s+(\S+)", re.MULTILINE)


# Public names outside ``triactor.__all__`` that users need: the diagnostics, and the way to
# run a tree with the launcher's shutdown inside one's own Trio program.
LAUNCHER_NAMES = ("run_tree", "RunningTree")


def public_names() -> dict[str, Any]:
    """Every documented public name, qualified as users import it, with its object."""
    import triactor
    import triactor.diagnostics
    import triactor.launcher

    names: dict[str, Any] = {}
    for module, members in (
        (triactor, triactor.__all__),
        (triactor.diagnostics, triactor.diagnostics.__all__),
        (triactor.launcher, LAUNCHER_NAMES),
    ):
        for name in members:
            names[f"{module.__name__}.{name}"] = getattr(module, name)
    return names


def listed_entries(text: str) -> list[str]:
    """The qualified names a reference page's Markdown documents with autodoc directives."""
    return _ENTRY.findall(text)


def page_for(obj: Any) -> str:
    """The reference page (name without ``.md``) that covers ``obj``'s defining module."""
    module = getattr(obj, "__module__", "") or ""
    best, length = FALLBACK, -1
    for page, prefixes in PAGES.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = page, len(prefix)
    return best


def entry(qualified: str, obj: Any) -> str:
    """The autodoc directive (reST, in a MyST ``eval-rst`` block) that documents one public name."""
    if inspect.isclass(obj):
        kind = "exception" if issubclass(obj, BaseException) else "class"
    elif callable(obj):
        kind = "function"
    else:
        kind = "data"
    return f"```{{eval-rst}}\n.. auto{kind}:: {qualified}\n```\n"


def unlisted(pages: dict[str, str]) -> dict[str, list[str]]:
    """Public names that no page lists, by the page that should document them."""
    listed = {name for text in pages.values() for name in listed_entries(text)}
    extra: dict[str, list[str]] = {}
    for qualified, obj in public_names().items():
        if qualified not in listed:
            extra.setdefault(page_for(obj), []).append(qualified)
    return extra


def read_pages() -> dict[str, str]:
    """Every reference page's Markdown, by page name."""
    return {path.stem: path.read_text() for path in sorted(REFERENCE.glob("*.md"))}


def generated(page: str, pages: dict[str, str]) -> str:
    """The Markdown appended to ``page``: entries for its unlisted public names, if any."""
    names = unlisted(pages).get(page, [])
    if not names:
        return ""
    objects = public_names()
    entries = "\n".join(entry(name, objects[name]) for name in names)
    return f"\n\n## More\n\n{entries}"


def entries_after_build() -> Iterator[str]:
    """Every qualified name the built reference documents, listed and generated."""
    pages = read_pages()
    for page, text in pages.items():
        yield from listed_entries(text + generated(page, pages))


# Classes that users get from triactor and never construct: their constructor's parameters
# are internals, so the reference shows no signature for them.
NOT_CONSTRUCTED = {
    "triactor.ActorSystem",
    "triactor.ActorRef",
    "triactor.RouterRef",
    "triactor.ActorPortal",
    "triactor.DeadLetters",
    "triactor.Lease",
    "triactor.Timers",
    "triactor.launcher.RunningTree",
}


def _on_process_signature(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: Any, annotation: Any
) -> tuple[str, Any] | None:
    if what in ("class", "exception") and name in NOT_CONSTRUCTED:
        return "", annotation
    return None


def _on_source_read(app: Any, docname: str, source: list[str]) -> None:
    if docname.startswith("reference/"):
        source[0] += generated(docname.removeprefix("reference/"), read_pages())


def setup(app: Any) -> dict[str, Any]:
    """Register the hooks (a Sphinx extension's entry point)."""
    app.connect("source-read", _on_source_read)
    app.connect("autodoc-process-signature", _on_process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
