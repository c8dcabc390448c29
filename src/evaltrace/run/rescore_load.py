"""Re-scoring's input: the run to re-score, which of the selected cases it ran (one shard's, when it was a shard),
and what it stored of each case (its output, or its task's error, and the spans its task produced), read from the
local trace store (see `store.records`) and the run's JSON report.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb

from ..names import INPUTS_DIGEST_ATTRIBUTE, OUTPUT_TYPE_ATTRIBUTE
from ..report.final import Report, read_report
from ..safety.bounds import was_cut
from ..store.duckdb import open_store
from ..store.files import StoreError
from ..store.records import (
    SpanRecord,
    case_traces,
    latest_runs,
    run_ids_starting_with,
    run_shard,
    spans_of_traces,
    traces_in_run,
)

if TYPE_CHECKING:
    import pytest

    from ..collect.shard import ShardPlan
    from ..settings.values import Settings

__all__ = (
    'CASE_SPAN_NAME',
    'REPORT_ENV',
    'TASK_SPAN_NAME',
    'ReportCase',
    'RescoreError',
    'StoredCase',
    'StoredShard',
    'error_status',
    'leave_out_other_shards',
    'load_stored_cases',
    'report_cases',
    'resolve_run',
    'scrub_marker',
    'stored_shard',
)

CASE_SPAN_NAME = 'case: {case_name}'
TASK_SPAN_NAME = 'execute {task}'

REPORT_ENV = 'EVALTRACE_RESCORE_REPORT'
"""Set by `evaltrace rescore`: a copy of the run's JSON report, when the report on disk is that run's."""


class RescoreError(Exception):
    """A run or case cannot be re-scored; the message is one line for the user."""


@dataclass
class StoredCase:
    """What a run stored about one case: its output (or the task's error) and its task's spans."""

    nodeid: str
    trace_id: str
    task_start_us: int = 0
    output: Any = None
    has_output: bool = False
    task_error: str | None = None
    spans: list[SpanRecord] = field(default_factory=list[SpanRecord])
    """The spans under the task's span, in start order (a parent before its children)."""
    task_duration: float | None = None
    """The task's span's duration in seconds: what pydantic-evals measured, and duration evaluators judged."""
    inputs_digest: str | None = None
    """The digest of the inputs the output was made from (see `judge.case.inputs_digest`; None before 0.1.1)."""
    output_type: str | None = None
    """The output's type when JSON did not keep it (see `judge.case.json_type_lost`)."""
    scrubbed: str | None = None
    """The scrubbing marker in `output` when it is the store's copy and was scrubbed (see `scrub_marker`)."""


def resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    """The run to re-score: `run_id` (or a unique prefix of it), else the latest run in the store.

    Raises:
        RescoreError: No such run, an ambiguous prefix, or an empty store.
    """
    if run_id is None:
        latest = latest_runs(con, 1)
        if not latest:
            raise RescoreError('the trace store holds no run; run your evals with pytest first')
        return latest[0]
    matches = run_ids_starting_with(con, run_id)
    if run_id in matches:
        return run_id
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ', '.join(matches[:5])
        raise RescoreError(f'run id {run_id!r} matches several runs ({listed}); give more characters')
    known = ', '.join(latest_runs(con, 5)) or 'none'
    raise RescoreError(f'no run {run_id!r} in the trace store (latest runs: {known})')


@dataclass(frozen=True)
class ReportCase:
    """What the run's JSON report says about a case: its trace and its output."""

    trace_id: str | None
    output: Any
    has_output: bool


@functools.cache
def _run_report(path: str, run_id: str) -> Report | None:
    """The JSON report at `path` when it is run `run_id`'s, else None (also for a missing or broken file)."""
    try:
        report = read_report(Path(path))
    except ValueError:
        return None
    return report if report.run_id == run_id else None


def report_cases(path: str, run_id: str) -> dict[str, ReportCase]:
    """The cases of the JSON report at `path` when it is run `run_id`'s, else {} (also for a missing or broken
    file: the store alone then says what it can)."""
    report = _run_report(path, run_id)
    if report is None:
        return {}
    # A case that errored before its task returned has no output; one whose output is None returned None.
    return {
        c.nodeid: ReportCase(c.trace_id, c.output, c.error is None or c.output is not None)
        for c in report.cases
        if c.nodeid
    }


@dataclass(frozen=True)
class StoredShard:
    """The shard a stored run was, and which of the selected cases it ran."""

    index: int
    count: int
    ran: frozenset[str]


def _shard_of(text: str) -> tuple[int, int] | None:
    index, _, count = text.partition('/')
    try:
        return int(index), int(count)
    except ValueError:
        return None


def stored_shard(store_path: Path, run_id: str, nodeids: Sequence[str]) -> StoredShard | None:
    """The shard run `run_id` was, with those of `nodeids` it ran; None when it was not one of several shards.

    Its case roots say which shard it was (`evaltrace.shard`), and the run's JSON report when `evaltrace rescore`
    passed it on (a run stored before the roots said it). A case ran when the store holds its root, or the report
    lists it. A store that cannot be read says nothing here: re-scoring then makes that every case's error.
    """
    report_copy = os.environ.get(REPORT_ENV)
    report = _run_report(report_copy, run_id) if report_copy else None
    try:
        con = open_store(store_path, merge=False)
        try:
            text = run_shard(con, run_id)
            ran = set(case_traces(con, run_id, nodeids))
        finally:
            con.close()
    except StoreError:
        return None
    shard = _shard_of(text) if text is not None else None
    if shard is None and report is not None:
        shard = report.shard.get('index', 1), report.shard_count
    if shard is None or shard[1] <= 1:
        return None
    if report is not None:
        ran.update(c.nodeid for c in report.cases if c.nodeid)
    return StoredShard(int(shard[0]), int(shard[1]), frozenset(n for n in nodeids if n in ran))


def leave_out_other_shards(
    config: pytest.Config, items: list[pytest.Item], plan: ShardPlan, settings: Settings
) -> None:
    """Re-scoring one shard's run: leave out (deselect) the selected cases another shard ran, rather than make each
    an error that the run stored no trace of (see `collect.shard.keep_stored_shard`)."""
    from ..collect.items import CaseParam, case_param
    from ..collect.shard import keep_stored_shard

    if settings.rescore is None or settings.store is None:
        return
    nodeids = [it.nodeid for it in items if isinstance(case_param(it), CaseParam)]
    stored = stored_shard(settings.store, settings.rescore, nodeids)
    if stored is not None:
        keep_stored_shard(config, items, plan, stored.index, stored.count, stored.ran)


def load_stored_cases(
    store_path: Path, run_id: str, nodeids: Sequence[str], report: Mapping[str, ReportCase] | None = None
) -> dict[str, StoredCase]:
    """The stored output and task spans of each of `nodeids` that the run stored (others are left out).

    logfire's own scrubbing replaces whole attribute values that merely mention e.g. 'password' or 'auth' (a
    node id `test_x[password_reset]`, a reply that says 'authorisation'). When the run's JSON report is at hand
    (`report`), it fills both gaps: it maps node ids to trace ids, and its outputs, which logfire never saw, win
    unless they were cut and the store's are whole and unscrubbed.

    Raises:
        StoreError: The store is missing, corrupt or locked.
    """
    report = report or {}
    con = open_store(store_path, merge=False)
    try:
        cases = {nodeid: StoredCase(nodeid, trace_id) for nodeid, trace_id in case_traces(con, run_id, nodeids).items()}
        missing = [n for n in nodeids if n not in cases and report.get(n) is not None and report[n].trace_id]
        if missing:
            traces = [str(report[n].trace_id) for n in missing]
            found = traces_in_run(con, run_id, traces)
            cases.update({n: StoredCase(n, t) for n, t in zip(missing, traces, strict=True) if t in found})
        by_trace = {case.trace_id: case for case in cases.values()}
        spans = spans_of_traces(con, by_trace, run_id=run_id)
    finally:
        con.close()
    for trace_id, trace_spans in spans.items():
        _fill_case(by_trace[trace_id], trace_spans)
    for nodeid, case in cases.items():
        in_report = report.get(nodeid)
        if in_report is None or not in_report.has_output or case.task_error is not None:
            continue
        # The report's copy is cut at max_value_chars; the store keeps an output whole (it is set after the span
        # starts, past `BoundAttributesProcessor`), so a cut copy gives way to a whole one, unless scrubbing replaced
        # it (then the cut copy is kept, and refused as cut).
        if not (was_cut(in_report.output) and case.has_output and not was_cut(case.output) and not case.scrubbed):
            case.output, case.has_output, case.scrubbed = in_report.output, True, None
    return cases


def _fill_case(case: StoredCase, spans: list[SpanRecord]) -> None:
    case_span = next((s for s in spans if s.span_name == CASE_SPAN_NAME), None)
    task_span = next((s for s in spans if s.span_name == TASK_SPAN_NAME), None)
    if case_span is not None:
        digest, kind = (
            case_span.attributes.get(INPUTS_DIGEST_ATTRIBUTE),
            case_span.attributes.get(OUTPUT_TYPE_ATTRIBUTE),
        )
        case.inputs_digest = digest if isinstance(digest, str) else None
        case.output_type = kind if isinstance(kind, str) else None
    if case_span is not None and 'output' in case_span.attributes:
        case.has_output = True
        schema = case_span.json_schema.get('output')
        # logfire writes None as the JSON text 'null' and marks it `{"type": "null"}`; a str 'null' has no type.
        is_null = isinstance(schema, dict) and cast('dict[str, Any]', schema).get('type') == 'null'
        case.output = None if is_null else case_span.attributes['output']
        case.scrubbed = scrub_marker(case.output)
    if task_span is None:
        return
    case.task_start_us = task_span.start_us
    case.task_duration = task_span.duration
    if task_span.exception_type:
        case.task_error = f'{task_span.exception_type}: {task_span.exception_message or ""}'
    elif (status_error := error_status(task_span)) is not None:
        case.task_error = status_error
    below: set[str] = {task_span.span_id}
    for span in spans:  # start order: a parent comes before its children
        if span.parent_span_id in below:
            below.add(span.span_id)
            case.spans.append(span)


_SCRUBBED = re.compile(r"\[Scrubbed due to '[^']*'\]")


def scrub_marker(value: Any) -> str | None:
    """The first marker scrubbing left in place of a value (`[Scrubbed due to 'session']`) in a stored copy, if any.

    logfire scrubs a whole value that mentions a sensitive word and holds something shaped like a credential, and any
    value under a sensitive key; such a copy is no longer what the task returned.
    """
    if isinstance(value, str):
        return match.group(0) if (match := _SCRUBBED.search(value)) is not None else None
    if isinstance(value, Mapping):
        items = cast('Mapping[Any, Any]', value).values()
    elif isinstance(value, list):
        items = cast('list[Any]', value)
    else:
        return None
    return next((marker for item in items if (marker := scrub_marker(item)) is not None), None)


def error_status(span: SpanRecord) -> str | None:
    """The description of a span's error status, if it ended with one that has a description."""
    return span.status_message or None if span.status_code == 'ERROR' else None
