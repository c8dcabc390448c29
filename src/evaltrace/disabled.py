"""A second, tiny pytest plugin that stays loaded when the main one is disabled with `-p no:evaltrace`.

`@evaltrace.suite` marks its function with `pytest.mark.evaltrace`. Without the plugin, that marker would be unknown,
a collection error under `--strict-markers`, and the suite's first parameter an unknown fixture. This plugin is its
own `pytest11` entry point (`evaltrace_disabled`), which `-p no:evaltrace` does not block: it then registers the
marker and skips the suites with the reason. While the main plugin is on, it does nothing.
"""

from __future__ import annotations

import pytest

__all__ = ('MAIN_PLUGIN', 'MARKER')

MAIN_PLUGIN = 'evaltrace'
MARKER = 'evaltrace'
_SKIP_REASON = 'evaltrace is disabled (-p no:evaltrace): eval suites are not run'


def _main_plugin_off(config: pytest.Config) -> bool:
    return config.pluginmanager.is_blocked(MAIN_PLUGIN)


def pytest_configure(config: pytest.Config) -> None:
    if _main_plugin_off(config):
        config.addinivalue_line('markers', f'{MARKER}: an eval suite (evaltrace is disabled in this run)')


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _main_plugin_off(config):
        return
    skip = pytest.mark.skip(reason=_SKIP_REASON)
    for item in items:
        if item.get_closest_marker(MARKER) is not None:
            item.add_marker(skip)
