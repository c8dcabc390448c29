"""Fixtures for the record/replay tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_openai import FakeOpenAI, serve_openai


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only."""
    return 'asyncio'


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fake OpenAI chat-completions server on 127.0.0.1 answering 'ok' (set `.responder` to script it)."""
    with serve_openai() as server:
        yield server
