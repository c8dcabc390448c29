"""Fixtures the eval suites in `evals/` share, and the LLM judge's model taken from the project's settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from agents.analyst_review import AnalystDeps
    from agents.support import SupportDeps
    from agents.text_to_sql import SqlDeps

_EVALS = Path(__file__).parent / 'evals'


def pytest_collection_finish(session: pytest.Session) -> None:
    # Only when eval suites were collected: importing pydantic-evals would slow down a plain `pytest tests/`.
    if any(item.path.is_relative_to(_EVALS) for item in session.items):
        from agents.judge import configure_judge

        configure_judge()


@pytest.fixture(scope='session')
def support_deps() -> SupportDeps:
    """The triage agent's dependencies: the shop database and the help articles."""
    from agents.support import SupportDeps

    return SupportDeps()


@pytest.fixture(scope='session')
def sql_deps() -> SqlDeps:
    """The text-to-SQL agent's dependencies: the shop database."""
    from agents.text_to_sql import SqlDeps

    return SqlDeps()


@pytest.fixture(scope='session')
def analyst_deps() -> AnalystDeps:
    """The analyst and reviewer agents' dependencies: the shop database."""
    from agents.analyst_review import AnalystDeps

    return AnalystDeps()
