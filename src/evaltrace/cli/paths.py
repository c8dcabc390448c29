"""The paths the `evaltrace` commands default to: the settings a `pytest` run from here would use.

An option given on the command line wins; otherwise the path comes from `resolve_cli_settings`, so
`EVALTRACE_STORE=x.duckdb`, `[tool.evaltrace] store = ...` or an `evaltrace_store` ini key reach `evaltrace show`,
`sql`, `rescore`, `report` and `baseline` as they reach the plugin.
"""

from __future__ import annotations

from pathlib import Path

from ..settings.resolve import resolve_cli_settings
from ..settings.values import Settings

__all__ = ('SettingOffError', 'baseline_path', 'report_path', 'store_path')


class SettingOffError(ValueError):
    """The command needs a file that the settings switch off (e.g. `store = "off"`)."""


def _shown(path: Path) -> Path:
    # Settings hold absolute paths (from the rootdir); below the current folder, the relative one reads better.
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _settings() -> Settings:
    # Resolved at each call, not cached: `evaltrace.cli.main` may run several times in one process (tests, scripts),
    # from other folders and with other environments, and each call must see its own.
    return resolve_cli_settings()


def store_path(given: Path | None) -> Path:
    """The trace store: the `--store` option, else the `store` setting."""
    if given is not None:
        return given
    settings = _settings()
    if settings.store is None:
        raise SettingOffError(
            f'the local trace store is off (store from {settings.sources.get("store", "default")}); pass --store'
        )
    return _shown(settings.store)


def report_path(given: Path | None) -> Path:
    """The JSON report: the option, else the `report` setting."""
    return given if given is not None else _shown(_settings().report)


def baseline_path(given: Path | None) -> Path:
    """The baseline file: the option, else the `baseline` setting."""
    return given if given is not None else _shown(_settings().baseline)
