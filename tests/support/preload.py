"""Imported once by tests/conftest.py: the modules in-process inner runs must find already imported.

`pytester.runpytest_inprocess` drops the modules an inner run imported when it ends. duckdb's extension cannot load
twice (the process aborts), re-imported instrumentation would stack on the old one, and re-importing the client
libraries costs seconds a run, so they are imported here, before any inner run, and stay.
"""

from __future__ import annotations

import importlib
import pkgutil

import duckdb
import genai_prices
import httpx2
import logfire._internal.integrations.httpx as logfire_httpx  # pyright: ignore[reportPrivateImportUsage]
import openai
import pydantic_ai.models.function
import pydantic_ai.models.openai
import pydantic_ai.providers.openai
import pydantic_evals.evaluators

import evaltrace

__all__ = ('PRELOADED',)

PRELOADED = (
    duckdb,
    genai_prices,
    httpx2,
    logfire_httpx,
    openai,
    pydantic_ai.models.function,
    pydantic_ai.models.openai,
    pydantic_ai.providers.openai,
    pydantic_evals.evaluators,
    # Every evaltrace module, so the hooks a module installs when imported (_replay, _faults) stay single.
    *(importlib.import_module(m.name) for m in pkgutil.walk_packages(evaltrace.__path__, 'evaltrace.')),
)
