"""The documentation site's promises: its code runs, its reference is complete and public,
and nothing points at a file or a command that does not exist.

Every piece of Python on the site is included from a file (``docs/snippets/`` or
``examples/``), never typed into a page; these tests run every snippet (under ``MockClock``
where it only waits on Trio's clock), and ``tests/test_examples.py`` runs the examples. The
site itself is built by ``.ci/run`` with warnings as errors (``sphinx-build -W -n``), so an
entry that does not resolve or a broken cross-reference fails CI there.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
sys.path.insert(0, str(DOCS / "_ext"))

import reference_pages  # noqa: E402  (docs/_ext is not a package)

# Snippets that need real time: they block the loop on purpose (the blocking detector
# watches wall-clock time) or talk to a Redis server (a mock clock would time its replies out).
# Worker processes (the CPU path) run on real time as well.
REAL_CLOCK = {"tutorial_3_blocking.py", "cluster_nodes.py", "scaling_router.py"}
# Snippets that are pytest test files, run by pytest itself (with the triactor plugin).
PYTEST_FILES = sorted(SNIPPETS.glob("testing_*.py"))
RUNNABLE = sorted(set(SNIPPETS.glob("*.py")) - set(PYTEST_FILES))
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def markdown_files() -> list[Path]:
    return [*PAGES, ROOT / "README.md"]


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_snippet_runs(path: Path, request: pytest.FixtureRequest) -> None:
    """Each snippet's ``main`` runs to its end; its own asserts check what the page says."""
    main = runpy.run_path(str(path), run_name="snippet")["main"]
    kwargs: dict[str, Any] = {}
    if "url" in inspect.signature(main).parameters:  # a cluster snippet: the test server
        kwargs["url"] = request.getfixturevalue("redis_url")
    if not inspect.iscoroutinefunction(main):
        main(**kwargs)
    elif path.name in REAL_CLOCK:
        trio.run(lambda: main(**kwargs))
    else:
        trio.run(lambda: main(**kwargs), clock=trio.testing.MockClock(autojump_threshold=0))


BLOCKING = "--triactor-blocking=0.2"


def readme_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_python_block_runs(index: int) -> None:
    """The README's example runs as shown (it asserts its own result)."""
    code = readme_blocks()[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "readme"})


def test_readme_shows_an_example() -> None:
    assert len(readme_blocks()) >= 1


@pytest.mark.parametrize("path", PYTEST_FILES, ids=lambda p: p.name)
def test_testing_snippet_passes_under_pytest(path: Path) -> None:
    """The testing guide's test files pass, with the blocking-call option on."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(path),
            "--triactor-blocking=0.2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_every_snippet_is_shown_somewhere() -> None:
    """A snippet that no page includes is dead weight (or a page lost its code)."""
    included = {
        (page.parent / target).resolve()
        for page in PAGES
        for target in re.findall(r"^```\{literalinclude\}\s+(\S+)", page.read_text(), re.M)
    }
    unused = [p.name for p in SNIPPETS.glob("*.py") if p.resolve() not in included]
    assert unused == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_comes_from_tested_files(page: Path) -> None:
    """No Python typed into a page: code blocks include snippets or examples, which run."""
    text = page.read_text()
    typed = re.findall(r"^(?:```|~~~)\s*(?:python|py|pycon|python3)\s*$", text, re.M)
    assert typed == [], f"{page.name}: put the code in docs/snippets/ and literalinclude it"
    for target in re.findall(r"^```\{literalinclude\}\s+(\S+)", text, re.M):
        path = (page.parent / target).resolve()
        assert path.is_file(), f"{page.name} includes {target}, which does not exist"
        assert path.is_relative_to(SNIPPETS) or path.is_relative_to(ROOT / "examples"), target


def test_reference_documents_every_public_name_once() -> None:
    """Every name of ``triactor.__all__`` (and the diagnostics) has exactly one entry."""
    documented = list(reference_pages.entries_after_build())
    public = reference_pages.public_names()
    assert sorted(documented) == sorted(public)  # none missing, none twice, none extra


def test_reference_renders_nothing_private() -> None:
    for page in (DOCS / "reference").glob("*.md"):
        for name in reference_pages.listed_entries(page.read_text()):
            assert not any(part.startswith("_") for part in name.split(".")), name


def test_a_new_public_name_flows_into_its_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name just added to ``__all__`` gets an entry on its module's page with no edit."""

    class Balancer:
        __module__ = "triactor.pools._balancer"

    def routing() -> None: ...

    routing.__module__ = "triactor.brand_new._thing"
    names = {
        **reference_pages.public_names(),
        "triactor.Balancer": Balancer,
        "triactor.routing": routing,
    }
    monkeypatch.setattr(reference_pages, "public_names", lambda: names)
    pages = reference_pages.read_pages()
    pools = reference_pages.generated("pools", pages)
    assert "## More" in pools and ".. autoclass:: triactor.Balancer" in pools
    fallback = reference_pages.generated(reference_pages.FALLBACK, pages)
    assert ".. autofunction:: triactor.routing" in fallback
    assert reference_pages.generated("actors", pages) == ""


def test_every_reference_page_is_reachable() -> None:
    index = (DOCS / "reference" / "index.md").read_text()
    for page in reference_pages.PAGES:
        assert (DOCS / "reference" / f"{page}.md").is_file(), page
        assert re.search(rf"^{page}$", index, re.M), f"{page} is not in the reference toctree"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_relative_links_point_at_files(path: Path) -> None:
    """Links between pages (and from the README into docs/) point at files that exist."""
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_no_reference_to_files_outside_the_repository() -> None:
    """Users only have the repository: no mention of the project's private notes."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg"} or path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        for missing in ("DESIGN.md", "SCENARIOS.md", "STYLE.md", "hidden-cost-of-waiting"):
            if missing in text and not (ROOT / missing).exists():
                offenders.append(f"{name}: {missing}")
    assert offenders == []


def commands(path: Path) -> list[str]:
    blocks = re.findall(r"^```(?:bash|console|sh)\n(.*?)^```", path.read_text(), re.M | re.S)
    return [line.strip().removeprefix("$ ") for block in blocks for line in block.splitlines()]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_shown_commands_name_real_modules(path: Path) -> None:
    """``python -m X`` names a module that exists; ``python -m benchmarks S`` a section."""
    from benchmarks.__main__ import SECTIONS

    for line in commands(path):
        for module, rest in re.findall(r"python -m ([\w.]+)([^#&|;]*)", line):
            assert importlib.util.find_spec(module) is not None, f"{path.name}: {line}"
            if module == "benchmarks":
                sections = [word for word in rest.split() if not word.startswith("-")]
                assert set(sections) <= set(SECTIONS), f"{path.name}: {line}"
        for target in re.findall(r"triactor (?:run|tree) ([\w.]+:\w+)", line):
            module, attr = target.split(":")
            assert hasattr(importlib.import_module(module), attr), f"{path.name}: {line}"
