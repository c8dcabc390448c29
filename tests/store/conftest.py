"""Fixtures of the trace-store tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store._support import Recorder


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
