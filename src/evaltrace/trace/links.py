"""Trace links: where a failure message sends the reader to see a case's trace."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

__all__ = (
    'CREDENTIALS_FILE',
    'LinkTarget',
    'case_anchor',
    'experiment_url',
    'logfire_trace_url',
    'project_url_from_credentials',
    'template_trace_url',
    'trace_url',
)


def logfire_trace_url(project_url: str, trace_id: str) -> str:
    """A Logfire live-view link filtered to one trace: `{project_url}?q=trace_id%3D%27{trace_id}%27`."""
    query = quote(f"trace_id='{trace_id}'", safe='')
    return f'{project_url.rstrip("/")}?q={query}'


def template_trace_url(template: str, trace_id: str, span_id: str) -> str:
    """Fill a URL template's `{trace_id}` and `{span_id}` placeholders (for Jaeger, Phoenix, Tempo...)."""
    return template.replace('{trace_id}', trace_id).replace('{span_id}', span_id)


def experiment_url(project_url: str | None, trace_id: str | None, span_id: str | None) -> str | None:
    """A link to an experiment in Logfire's Evals view, in the format of `logfire.url_from_eval`."""
    if not project_url or not trace_id or not span_id:
        return None
    return f'{project_url.rstrip("/")}/evals/compare?experiment={trace_id}-{span_id}'


CREDENTIALS_FILE = 'logfire_credentials.json'
"""The file `logfire auth` / `logfire projects use` write in logfire's data folder (`.logfire`)."""


def project_url_from_credentials(data_dir: Path) -> str | None:
    """The `project_url` from `.logfire/logfire_credentials.json`, or None when there is none.

    A credentials file that is not valid JSON is treated as absent: links then fall back to local ones, and logfire
    itself reports the broken file when it configures.
    """
    path = data_dir / CREDENTIALS_FILE
    try:
        data: Any = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return None
    url: Any = cast(dict[str, Any], data).get('project_url') if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


class LinkTarget:
    """Where links point, decided once per session: a URL template, a Logfire project, or the local report."""

    def __init__(self, *, template: str | None, project_url: str | None, local_report: Path | None) -> None:
        self.template = template
        self.project_url = project_url
        self.local_report = local_report
        # Resolved once: resolving touches the file system, and every case needs a link.
        self.local_report_uri = local_report.resolve().as_uri() if local_report is not None else None

    @property
    def is_remote(self) -> bool:
        return bool(self.template or self.project_url)

    def url(self, trace_id: str | None, span_id: str | None, anchor: str | None = None) -> str | None:
        return trace_url(self, trace_id, span_id, anchor)


def trace_url(target: LinkTarget, trace_id: str | None, span_id: str | None, anchor: str | None = None) -> str | None:
    """The link for one case: the template wins over a Logfire project, which wins over the local HTML report."""
    if not trace_id:
        return None
    if target.template:
        return template_trace_url(target.template, trace_id, span_id or '')
    if target.project_url:
        return logfire_trace_url(target.project_url, trace_id)
    if target.local_report_uri is not None:
        return f'{target.local_report_uri}#{anchor or "trace-" + trace_id}'
    return None


def case_anchor(nodeid: str) -> str:
    """The anchor of a case in the HTML report, which local trace links end with."""
    return 'case-' + uuid.uuid5(uuid.NAMESPACE_URL, nodeid).hex[:16]
