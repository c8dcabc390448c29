"""Fixtures of the HTML report tests: Debian's headless Chromium through Playwright, kept off the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import CHROMIUM_ARGS, CHROMIUM_PATH

CHROMIUM = Path(CHROMIUM_PATH)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Playwright page in headless Chromium, with a fresh profile; no request leaves file:// (asserted).

    Without Chromium the test is skipped, except under CI (CI=true), where a missing browser must fail the run.
    """
    if not CHROMIUM.exists():
        message = f'{CHROMIUM} not found: apt-get install chromium'
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / 'chromium-profile'),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            offline=True,
            viewport={'width': 1400, 'height': 1000},
        )
        try:
            page = context.new_page()
            page.on('request', lambda request: requests.append(request.url))
            errors: list[str] = []
            page.on('pageerror', lambda error: errors.append(str(error)))
            yield page
            assert errors == [], f'JavaScript errors: {errors}'
        finally:
            context.close()
    assert [url for url in requests if not url.startswith('file://')] == []
