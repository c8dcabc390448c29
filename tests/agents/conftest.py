"""Fixtures for the agents' unit tests: Logfire captured in memory, pydantic-ai instrumented on request."""

from __future__ import annotations

from collections.abc import Iterator

import logfire
import pytest
from logfire.testing import CaptureLogfire
from pydantic_ai import Agent


@pytest.fixture(autouse=True)
def _capture(capfire: CaptureLogfire) -> CaptureLogfire:
    """Configure Logfire for every test here: the tools trace SQL through it."""
    return capfire


@pytest.fixture
def instrumented() -> Iterator[None]:
    """Instrument pydantic-ai for one test, so agent runs and tool calls become spans."""
    logfire.instrument_pydantic_ai()
    yield
    Agent.instrument_all(False)
