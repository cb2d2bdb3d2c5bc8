"""Runnable triactor programs: ``python -m examples.NAME``."""
