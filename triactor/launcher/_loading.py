"""Finding the tree a ``module:attr`` target names, with a clear error for every way it can fail."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from ..actors import Actor
from ..supervision import Supervisor

__all__ = ["TargetError", "TargetFailed", "build_tree", "load_target"]

_EXAMPLE = "myapp.main:tree"


class TargetError(Exception):
    """A ``module:attr`` target that does not name a tree: the command exits with code 2.

    Raised for a malformed target, a missing module or attribute, an object of the wrong type,
    or a function that needs arguments or returns something other than a Supervisor. The
    message says what was found and what to do.
    """


class TargetFailed(Exception):
    """The target's own code raised while being imported or called (the cause is chained)."""


def _split(target: str) -> tuple[str, list[str]]:
    module, sep, attr = target.partition(":")
    parts = attr.split(".")
    if not sep or not module or not all(parts) or not all(module.split(".")):
        raise TargetError(
            f"expected a target of the form module:attr (e.g. {_EXAMPLE}), got {target!r}"
        )
    return module, parts


def _import(module: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # like `python -m`: modules of the current directory
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module or module.startswith(missing + "."):
            raise TargetError(
                f"no module named {missing!r} (looked in the current directory {cwd} and "
                "sys.path); check the spelling, or run from the directory that holds the "
                "package"
            ) from None
        raise TargetFailed(f"importing module {module!r} failed: {exc}") from exc
    except Exception as exc:
        raise TargetFailed(f"importing module {module!r} raised {exc!r}") from exc


def _candidates(module: Any) -> str:
    names = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (
            isinstance(value, Supervisor)
            or (inspect.isfunction(value) and getattr(value, "__module__", None) == module.__name__)
        )
    ]
    return ", ".join(sorted(names)) or "none"


def load_target(target: str) -> Any:
    """Import the module of ``module:attr`` and return the attribute (dotted paths allowed).

    The current directory is put on ``sys.path`` first, as ``python -m`` does.

    Raises:
        TargetError: if the target is malformed, or the module or attribute does not exist.
        TargetFailed: if importing the module raised (a bug in it, or a missing dependency).
    """
    module_name, parts = _split(target)
    obj = _import(module_name)
    for depth, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = module_name + "".join(f".{p}" for p in parts[:depth])
            hint = (
                f"; supervisors and functions it defines: {_candidates(obj)}" if depth == 0 else ""
            )
            raise TargetError(f"{where!r} has no attribute {part!r}{hint}") from None
    return obj


def _describe(obj: object) -> str:
    if obj is None:
        return "None"
    kind = type(obj)
    return f"{'an' if kind.__name__[0].lower() in 'aeiou' else 'a'} {kind.__qualname__}"


async def build_tree(target: str) -> Supervisor:
    """Return the Supervisor that ``module:attr`` names, or that the function it names returns.

    The attribute may be a :class:`~triactor.Supervisor`, or a function (sync or async) that
    takes no arguments and returns one; it is called here.

    Raises:
        TargetError: if the target does not lead to a Supervisor (see :func:`load_target`).
        TargetFailed: if importing the module or calling the function raised.
    """
    obj = load_target(target)
    if isinstance(obj, Supervisor):
        return obj
    if isinstance(obj, type) and issubclass(obj, Actor):
        raise TargetError(
            f"{target!r} is an Actor class, not a tree; run it under a supervisor: "
            f"Supervisor('root', [ChildSpec({obj.__name__}, name=...)])"
        )
    if not callable(obj):
        raise TargetError(
            f"{target!r} is {_describe(obj)}, not a Supervisor or a function returning one"
        )
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # no signature to inspect (some builtins): just call it
        pass
    else:
        required = [
            name
            for name, parameter in signature.parameters.items()
            if parameter.default is parameter.empty
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
        if required:
            raise TargetError(
                f"{target!r} takes required arguments ({', '.join(required)}); the launcher "
                "calls it with none: give them defaults, or point at a function without any"
            )
    try:
        result = obj()
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise TargetFailed(f"calling {target!r} raised {exc!r}") from exc
    if not isinstance(result, Supervisor):
        raise TargetError(
            f"{target!r} returned {_describe(result)}; it must return a triactor.Supervisor"
        )
    return result
