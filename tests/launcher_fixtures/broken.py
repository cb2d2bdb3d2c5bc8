"""A module whose import fails: it needs a dependency that is not installed."""

import triactor_fixture_dependency_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401
