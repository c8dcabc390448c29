"""Inner runs must not see the outer CI: no GitHub Actions variables, no evaltrace settings from the environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(('GITHUB_', 'EVALTRACE_')):
            monkeypatch.delenv(name)
