"""Re-scoring: re-run a suite's current evaluators on the outputs and span trees an earlier run stored.

`evaltrace rescore` runs pytest on the suites with `--evaltrace-rescore=RUN_ID`, so collection, datasets, evaluator
types, fixtures, gates and the report are the usual ones. Only the task differs: for each case, a stand-in task
re-emits the spans the original task produced (everything under the stored `execute {task}` span, with the original
names, attributes and relative timing) as real spans, so pydantic-evals' span tree (and span-based evaluators) see
them, and returns the stored output, validated against the suite function's return type. No agent is called; an
LLM judge among the evaluators does call its model again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb

from ._store import StoreError, open_store

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from ._collect import SuiteRuntime
    from ._results import CaseResult
    from ._run import CaseWork
    from ._settings import Settings
    from ._trace import TraceSetup

__all__ = (
    'REPORT_ENV',
    'RESCORED_ATTRIBUTE',
    'RescoreError',
    'StoredCase',
    'StoredSpan',
    'load_stored_cases',
    'rescore_note',
    'rescore_report_fields',
    'rescore_works',
    'resolve_run',
    'stored_suites',
)

RESCORED_ATTRIBUTE = 'evaltrace.rescored_from'
"""Set on every re-emitted span: the run whose spans it copies."""
IS_ROOT = "attributes->>'evaltrace.case' = 'true'"  # a case's root span (see _trace)
CASE_SPAN_NAME = 'case: {case_name}'
TASK_SPAN_NAME = 'execute {task}'
_REPLAYED_ATTRIBUTE = 'evaltrace.replayed'  # as in _trace: the usage of such a span was not spent by this run


class RescoreError(Exception):
    """A run or case cannot be re-scored; the message is one line for the user."""


def rescore_note(run_id: str) -> str:
    """What a re-scored report says about where its outputs came from and what was (not) called."""
    return (
        f'Outputs and task spans are those stored by run {run_id}; the tasks (agents) were not called again, and '
        "the task usage shown is that run's (counted as replayed, not spent). The current evaluators ran anew: "
        "an LLM judge among them replayed its recorded answers when the run's cassettes hold them, else called its "
        "model again; its usage is this run's judge usage."
    )


def rescore_report_fields(run_id: str) -> dict[str, Any]:
    """The fields a re-scored report carries at its top level."""
    return {'rescored_from': run_id, 'rescore_note': rescore_note(run_id)}


# --- reading the stored run ----------------------------------------------------------------------------------------


@dataclass
class StoredSpan:
    """One span under a stored task span, as the store keeps it."""

    span_id: str
    parent_span_id: str | None
    span_name: str
    message: str
    start_us: int
    duration_s: float
    kind: str
    attributes: dict[str, Any]
    json_schema: dict[str, Any]
    scope: str | None
    tags: list[str]
    exception: tuple[str, str, str] | None
    error_message: str | None


@dataclass
class StoredCase:
    """What a run stored about one case: its output (or the task's error) and its task's spans."""

    nodeid: str
    trace_id: str
    task_start_us: int = 0
    output: Any = None
    has_output: bool = False
    task_error: str | None = None
    spans: list[StoredSpan] = field(default_factory=list[StoredSpan])


def resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    """The run to re-score: `run_id` (or a unique prefix of it), else the latest run in the store.

    Raises:
        RescoreError: No such run, an ambiguous prefix, or an empty store.
    """
    if run_id is None:
        rows = con.execute('SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1').fetchall()
        if not rows:
            raise RescoreError('the trace store holds no run; run your evals with pytest first')
        return str(rows[0][0])
    rows = con.execute('SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id', [run_id]).fetchall()
    exact = [str(r[0]) for r in rows if r[0] == run_id]
    if exact:
        return exact[0]
    if len(rows) == 1:
        return str(rows[0][0])
    if rows:
        listed = ', '.join(str(r[0]) for r in rows[:5])
        raise RescoreError(f'run id {run_id!r} matches several runs ({listed}); give more characters')
    recent = con.execute('SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 5').fetchall()
    known = ', '.join(str(r[0]) for r in recent) or 'none'
    raise RescoreError(f'no run {run_id!r} in the trace store (latest runs: {known})')


def stored_suites(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """The suite ids (node ids without the case part) whose cases the run stored, in name order."""
    rows = con.execute(
        "SELECT DISTINCT split_part(attributes->>'nodeid', '[', 1) AS suite FROM records "
        f"WHERE run_id = ? AND {IS_ROOT} AND attributes->>'nodeid' IS NOT NULL ORDER BY suite",
        [run_id],
    ).fetchall()
    return [str(r[0]) for r in rows if r[0]]


def _json_object(text: Any) -> dict[str, Any]:
    if not text:
        return {}
    value: Any = json.loads(text) if isinstance(text, str) else text
    return cast('dict[str, Any]', value) if isinstance(value, dict) else {}


REPORT_ENV = 'EVALTRACE_RESCORE_REPORT'
"""Set by `evaltrace rescore`: a copy of the run's JSON report, when the report on disk is that run's."""


@dataclass(frozen=True)
class ReportCase:
    """What the run's JSON report says about a case: its trace and its output."""

    trace_id: str | None
    output: Any
    has_output: bool


@functools.cache
def report_cases(path: str, run_id: str) -> dict[str, ReportCase]:
    """The cases of the JSON report at `path` when it is run `run_id`'s, else {} (also for a missing file)."""
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or cast('dict[str, Any]', data).get('run_id') != run_id:
        return {}
    cases: dict[str, ReportCase] = {}
    for case in cast('list[Any]', cast('dict[str, Any]', data).get('cases') or []):
        if isinstance(case, dict) and isinstance(nodeid := cast('dict[str, Any]', case).get('nodeid'), str):
            case = cast('dict[str, Any]', case)
            has_output = 'output' in case and (case.get('error') is None or case.get('output') is not None)
            cases[nodeid] = ReportCase(case.get('trace_id'), case.get('output'), has_output)
    return cases


def load_stored_cases(
    store_path: Path, run_id: str, nodeids: Sequence[str], report: Mapping[str, ReportCase] | None = None
) -> dict[str, StoredCase]:
    """The stored output and task spans of each of `nodeids` that the run stored (others are left out).

    logfire's own scrubbing replaces whole attribute values that merely mention e.g. 'password' or 'auth' (a
    node id `test_x[password_reset]`, a reply that says 'authorisation'). When the run's JSON report is at hand
    (`report`), it fills both gaps: it maps node ids to trace ids, and its outputs, which logfire never saw, win.

    Raises:
        StoreError: The store is missing, corrupt or locked.
    """
    report = report or {}
    con = open_store(store_path, merge=False)
    try:
        roots = con.execute(
            f"SELECT attributes->>'nodeid', trace_id FROM records WHERE run_id = ? AND {IS_ROOT} "
            "AND list_contains(?, attributes->>'nodeid') ORDER BY start_timestamp",
            [run_id, list(nodeids)],
        ).fetchall()
        cases = {str(nodeid): StoredCase(str(nodeid), str(trace_id)) for nodeid, trace_id in roots}
        missing = [n for n in nodeids if n not in cases and report.get(n) is not None and report[n].trace_id]
        if missing:
            traces = [str(report[n].trace_id) for n in missing]
            known = con.execute(
                'SELECT DISTINCT trace_id FROM records WHERE run_id = ? AND list_contains(?, trace_id)',
                [run_id, traces],
            ).fetchall()
            found = {str(r[0]) for r in known}
            cases.update({n: StoredCase(n, t) for n, t in zip(missing, traces, strict=True) if t in found})
        by_trace = {case.trace_id: case for case in cases.values()}
        rows = con.execute(
            'SELECT trace_id, span_id, parent_span_id, span_name, message, epoch_us(start_timestamp), duration, kind, '
            'CAST(attributes AS VARCHAR), CAST(attributes_json_schema AS VARCHAR), otel_scope_name, tags, '
            'exception_type, exception_message, exception_stacktrace, otel_status_code, otel_status_message, '
            'otel_scope_name FROM records WHERE run_id = ? AND list_contains(?, trace_id) '
            'ORDER BY trace_id, start_timestamp, span_id',
            [run_id, list(by_trace)],
        ).fetchall()
    finally:
        con.close()
    spans_by_trace: dict[str, list[StoredSpan]] = {}
    for row in rows:
        exception = (str(row[12] or ''), str(row[13] or ''), str(row[14] or '')) if row[12] else None
        spans_by_trace.setdefault(str(row[0]), []).append(
            StoredSpan(
                span_id=str(row[1]),
                parent_span_id=row[2],
                span_name=str(row[3] or ''),
                message=str(row[4] or ''),
                start_us=int(row[5]),
                duration_s=float(row[6] or 0.0),
                kind=str(row[7] or 'span'),
                attributes=_json_object(row[8]),
                json_schema=_json_object(row[9]),
                scope=row[10],
                tags=[str(t) for t in cast('list[Any]', row[11] or [])],
                exception=exception,
                error_message=row[16] if row[15] == 'ERROR' else None,
            )
        )
    for trace_id, spans in spans_by_trace.items():
        _fill_case(by_trace[trace_id], spans)
    for nodeid, case in cases.items():
        in_report = report.get(nodeid)
        if in_report is not None and in_report.has_output and case.task_error is None:
            case.output, case.has_output = in_report.output, True
    return cases


def _fill_case(case: StoredCase, spans: list[StoredSpan]) -> None:
    case_span = next((s for s in spans if s.span_name == CASE_SPAN_NAME), None)
    task_span = next((s for s in spans if s.span_name == TASK_SPAN_NAME), None)
    if case_span is not None and 'output' in case_span.attributes:
        case.has_output = True
        schema = case_span.json_schema.get('output')
        # logfire writes None as the JSON text 'null' and marks it `{"type": "null"}`; a str 'null' has no type.
        is_null = isinstance(schema, dict) and cast('dict[str, Any]', schema).get('type') == 'null'
        case.output = None if is_null else case_span.attributes['output']
    if task_span is None:
        return
    case.task_start_us = task_span.start_us
    if task_span.exception is not None:
        case.task_error = f'{task_span.exception[0]}: {task_span.exception[1]}'
    elif task_span.error_message:
        case.task_error = task_span.error_message
    below: set[str] = {task_span.span_id}
    for span in spans:  # start order: a parent comes before its children
        if span.parent_span_id in below:
            below.add(span.span_id)
            case.spans.append(span)


# --- re-emitting the task's spans ----------------------------------------------------------------------------------


def _otel_value(value: Any) -> tuple[Any, bool]:
    """An OTel attribute value for a stored one, and whether it was encoded as JSON (dicts, mixed lists)."""
    if isinstance(value, bool | int | float | str):
        return value, False
    if isinstance(value, list):
        items = cast('list[Any]', value)
        for kind in (str, bool, int, float):
            if items and all(type(v) is kind for v in items):
                return tuple(items), False
    return json.dumps(value, ensure_ascii=False, default=str), True


def _attributes(span: StoredSpan, run_id: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    schema_properties: dict[str, Any] = {}
    for key, value in span.attributes.items():
        if value is None:
            continue
        encoded, is_json = _otel_value(value)
        attributes[key] = encoded
        if is_json or key in span.json_schema:
            schema_properties[key] = span.json_schema.get(key) or {
                'type': 'array' if isinstance(value, list) else 'object'
            }
    # The columns the store promoted out of `attributes` go back where logfire keeps them.
    attributes['logfire.msg'] = span.message
    attributes['logfire.span_type'] = span.kind
    if span.tags:
        attributes['logfire.tags'] = tuple(span.tags)
    if schema_properties:
        attributes['logfire.json_schema'] = json.dumps({'type': 'object', 'properties': schema_properties})
    attributes[RESCORED_ATTRIBUTE] = run_id
    if 'gen_ai.usage.input_tokens' in attributes or 'gen_ai.usage.output_tokens' in attributes:
        attributes[_REPLAYED_ATTRIBUTE] = True
    return attributes


def replay_task_spans(case: StoredCase, run_id: str) -> None:
    """Emit the case's stored task spans under the current span, keeping their offsets from the task's start.

    Each span is started and ended with explicit times (its stored offset from the stored task start, applied to
    now, and its stored duration): nothing waits, and span-based evaluators see the original durations.
    """
    import logfire
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    provider: Any = logfire.DEFAULT_LOGFIRE_INSTANCE.config.get_tracer_provider()
    base_ns = time.time_ns()
    current = otel_context.get_current()
    emitted: dict[str, tuple[Span, int]] = {}
    tracers: dict[str, Any] = {}
    for stored in case.spans:
        scope = stored.scope or 'evaltrace.rescore'
        tracer = tracers.get(scope) or tracers.setdefault(scope, provider.get_tracer(scope))
        parent = emitted.get(stored.parent_span_id or '')
        ctx = trace.set_span_in_context(parent[0], current) if parent is not None else current
        start_ns = base_ns + max(stored.start_us - case.task_start_us, 0) * 1000
        span: Span = tracer.start_span(
            stored.span_name, context=ctx, attributes=_attributes(stored, run_id), start_time=start_ns
        )
        end_ns = start_ns + int(stored.duration_s * 1e9)
        if stored.exception is not None:
            exc_type, exc_message, stacktrace = stored.exception
            span.add_event(
                'exception',
                {'exception.type': exc_type, 'exception.message': exc_message, 'exception.stacktrace': stacktrace},
                timestamp=end_ns,
            )
        if stored.exception is not None or stored.error_message:
            span.set_status(Status(StatusCode.ERROR, stored.error_message or (stored.exception or ('', ''))[1]))
        emitted[stored.span_id] = (span, end_ns)
    # Children end before their parents, as they did.
    for span, end_ns in reversed(list(emitted.values())):
        span.end(end_time=end_ns)


class StoredTaskError(Exception):
    """The original task raised; re-scoring raises it again (as this type, with the original type in the text)."""


def stored_task(
    case: StoredCase | None, run_id: str, output_type: Any, name: str, nodeid: str, missing: str | None = None
) -> Callable[..., Any]:
    """The task that stands in for the suite function: re-emits the stored spans, returns the stored output."""
    validate: Callable[[Any], Any] | None = None
    if output_type is not Any and output_type is not None:
        from pydantic import TypeAdapter

        validate = TypeAdapter(output_type).validate_python

    async def task(inputs: Any, **_fixtures: Any) -> Any:
        if case is None:
            raise RescoreError(missing or f'run {run_id} stored no trace for {nodeid}; run it normally with pytest')
        replay_task_spans(case, run_id)
        if case.task_error is not None:
            raise StoredTaskError(f'{case.task_error} (stored by run {run_id})')
        if not case.has_output:
            raise RescoreError(f'run {run_id} stored no output for {nodeid}; run it normally with pytest')
        if validate is None:
            return case.output
        try:
            return validate(case.output)
        except ValueError as e:
            first = str(e).strip().splitlines()[0]
            raise RescoreError(
                f'the output run {run_id} stored for {nodeid} does not fit {output_type}: {first}'
            ) from None

    task.__name__ = task.__qualname__ = name  # pydantic-evals names the task span after it: `execute {name}`
    return task


def rescore_works(
    settings: Settings,
    works: Sequence[CaseWork],
    runtime: SuiteRuntime,
    suite_id: str,
    timeout: float | None,
    setup: TraceSetup,
    on_result: Callable[[CaseResult], None],
) -> None:
    """Evaluate a batch of cases on what run `settings.rescore` stored, with the suite's current evaluators.

    Each case still runs through `run_cases` (its own trace, `Dataset.evaluate`, timeout, verdict), with a stand-in
    task; an LLM judge's requests replay from the cases' cassettes when they were recorded (`rescore_replay`).
    """
    from ._dataset import task_types
    from ._replay import rescore_replay
    from ._run import SuiteRunContext, run_cases
    from ._scrub import SecretScrubber

    run_id = settings.rescore
    assert run_id is not None
    # A store problem is every case's error (one line each), not a crash of the session.
    stored: dict[str, StoredCase] = {}
    missing: str | None = None
    if settings.store is None:
        missing = 're-scoring needs the local trace store, and evaltrace_store is off'
    else:
        try:
            report_copy = os.environ.get(REPORT_ENV)
            in_report = report_cases(report_copy, run_id) if report_copy else {}
            stored = load_stored_cases(settings.store, run_id, [w.nodeid for w in works], in_report)
        except StoreError as e:
            missing = str(e)
    _, output_type, _ = task_types(runtime.fn, method=runtime.method)
    limiter = asyncio.Semaphore(runtime.spec.max_concurrency or settings.max_concurrency)
    scrubber = SecretScrubber(settings.scrub_patterns)
    judge_replay = rescore_replay(settings, runtime, suite_id)  # recorded judge traffic replays: re-scoring offline

    async def one(work: CaseWork) -> None:
        async with limiter:
            fn = stored_task(stored.get(work.nodeid), run_id, output_type, runtime.fn.__name__, work.nodeid, missing)
            shared = SuiteRunContext(
                task=fn,
                dataset=runtime.dataset,
                spec=runtime.spec,
                suite_id=suite_id,
                suite_name=runtime.name,
                timeout=timeout,
                setup=setup,
                replay=judge_replay,
                scrubber=scrubber,
                on_result=on_result,
            )
            await run_cases([work], shared, max_concurrency=1)

    async def run_all() -> None:
        await asyncio.gather(*(one(w) for w in works))

    asyncio.run(run_all())
