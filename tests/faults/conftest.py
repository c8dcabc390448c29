"""Fixtures for the fault-injection tests."""

from __future__ import annotations

import duckdb  # noqa: F401  (a native module: in-process inner runs must not import it a second time)
