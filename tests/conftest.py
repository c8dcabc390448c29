"""Fixtures shared by evaltrace's own tests: a sealed environment, an eval project inside pytester, a trace store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.support.preload  # noqa: F401  # pyright: ignore[reportUnusedImport]  (before any inner run: see there)
from tests.support.eval_project import PRICED_MODEL, EvalProject
from tests.support.spool_recorder import Recorder

# Variables that change what an inner run does. Exported around the outer run (a developer's shell, a CI job), they
# would reach every inner run; each test sets the ones it is about itself.
SEALED_PREFIXES = ('EVALTRACE_', 'GITHUB_', 'LOGFIRE_', 'OTEL_', 'DEMO_')


@pytest.fixture(autouse=True)
def _sealed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs see none of the outer environment's evaltrace, GitHub, Logfire, OpenTelemetry or demo settings."""
    for name in list(os.environ):
        if name.startswith(SEALED_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def project(pytester: pytest.Pytester) -> EvalProject:
    """An empty eval project (pyproject.toml, a priced FunctionModel helper module) in pytester's folder."""
    p = EvalProject(pytester)
    p.write('pyproject.toml', '[tool.pytest.ini_options]\n')
    p.write('helpers_models.py', PRICED_MODEL)
    pytester.syspathinsert()
    return p


@pytest.fixture
def upper_cases() -> Callable[[int], list[dict[str, Any]]]:
    """Cases whose expected output is the upper-cased input."""

    def make(n: int) -> list[dict[str, Any]]:
        return [{'name': f'c{i}', 'inputs': f'word{i}', 'expected_output': f'WORD{i}'} for i in range(n)]

    return make


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A trace store path in a fresh `.evaltrace` folder."""
    return tmp_path / '.evaltrace' / 'traces.duckdb'


@pytest.fixture
def recorder_factory(store_path: Path) -> Iterator[Callable[..., Recorder]]:
    """Makes `Recorder`s writing to `store_path`; shuts their processors down at the end."""
    made: list[Recorder] = []

    def make(run_id: str = 'run-1', extra_patterns: tuple[str, ...] = ()) -> Recorder:
        recorder = Recorder(store_path, run_id, extra_patterns)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.processor.shutdown()
