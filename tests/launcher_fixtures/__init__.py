"""Modules that the launcher tests point ``triactor run`` and ``triactor tree`` at.

The tests run the command with ``tests/`` as the working directory, so these import as
``launcher_fixtures.<module>``. Fixtures print to stdout (flushed) what the tests check.
"""
