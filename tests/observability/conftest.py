"""The chart's rendering fixture, shared with tests/chart (same cache semantics)."""

from chart.conftest import render  # noqa: F401  (a fixture, used by name)
