"""Re-scoring: re-run a suite's current evaluators on the outputs and span trees an earlier run stored.

`evaltrace rescore` runs pytest on the suites with `--evaltrace-rescore=RUN_ID`, so collection, datasets, evaluator
types, fixtures, gates and the report are the usual ones, and each case is scheduled and run as a live one is (see
`session.state`). Only the task differs: for each case, a stand-in task re-emits the spans the original task produced
(everything under the stored `execute {task}` span, with the original names, attributes and relative timing) as
real spans, so pydantic-evals' span tree (and span-based evaluators) see them, and returns the stored output,
validated against the suite function's return type. No agent is called; an LLM judge among the evaluators replays
its recorded answers from the cases' cassettes (see `run.replay.rescore_replay`), or calls its model again.
What the run stored is read by `run.rescore_load`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..judge.case import inputs_digest, jsonable
from ..safety.bounds import was_cut
from ..store.files import StoreError
from .replay_http import REPLAYED_ATTRIBUTE
from .rescore_load import REPORT_ENV, RescoreError, StoredCase, error_status, load_stored_cases, report_cases

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from ..collect.items import SuiteRuntime
    from ..settings.values import Settings
    from ..store.records import SpanRecord
    from .replay import ReplayConfig

__all__ = (
    'RESCORED_ATTRIBUTE',
    'StandIns',
    'StoredTaskError',
    'output_validator',
    'replay_task_spans',
    'rescore_note',
    'rescore_report_fields',
    'stand_ins',
    'stored_task',
)

RESCORED_ATTRIBUTE = 'evaltrace.rescored_from'
"""Set on every re-emitted span: the run whose spans it copies."""


def rescore_note(run_id: str) -> str:
    """What a re-scored report says about where its outputs came from and what was (not) called."""
    return (
        f'Outputs and task spans are those stored by run {run_id}; the tasks (agents) were not called again, and '
        "the task usage shown is that run's (counted as replayed, not spent). The current evaluators ran anew: "
        "an LLM judge among them replayed its recorded answers when the run's cassettes hold them, else called its "
        "model again; its usage is this run's judge usage."
    )


def rescore_report_fields(run_id: str, left_out: int | None = None) -> dict[str, Any]:
    """The fields a re-scored report carries at its top level; `left_out`, when the run was one shard of several:
    how many selected cases it left out, which another shard ran (see `collect.shard.keep_stored_shard`)."""
    fields: dict[str, Any] = {'rescored_from': run_id, 'rescore_note': rescore_note(run_id)}
    if left_out is not None:
        fields['rescore_left_out'] = left_out
    return fields


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


def _attributes(span: SpanRecord, run_id: str) -> dict[str, Any]:
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
        attributes[REPLAYED_ATTRIBUTE] = True  # its usage was not spent by this run
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
        end_ns = start_ns + int(stored.duration * 1e9)
        if stored.exception_type:
            span.add_event(
                'exception',
                {
                    'exception.type': stored.exception_type,
                    'exception.message': stored.exception_message or '',
                    'exception.stacktrace': stored.exception_stacktrace or '',
                },
                timestamp=end_ns,
            )
        status_error = error_status(stored)
        if stored.exception_type or status_error:
            span.set_status(Status(StatusCode.ERROR, status_error or stored.exception_message or ''))
        emitted[stored.span_id] = (span, end_ns)
    # Children end before their parents, as they did.
    for span, end_ns in reversed(list(emitted.values())):
        span.end(end_time=end_ns)


class StoredTaskError(Exception):
    """The original task raised; re-scoring raises it again (as this type, with the original type in the text)."""


def output_validator(output_type: Any) -> Callable[[Any], Any] | None:
    """What validates a stored output against the suite function's return type (None: no annotation)."""
    if output_type is Any or output_type is None:
        return None
    from pydantic import TypeAdapter

    return TypeAdapter(output_type).validate_python


def stored_task(
    case: StoredCase | None,
    run_id: str,
    output_type: Any,
    name: str,
    nodeid: str,
    missing: str | None = None,
    validate: Callable[[Any], Any] | None = None,
) -> Callable[..., Any]:
    """The task that stands in for the suite function: re-emits the stored spans, returns the stored output.

    `validate` (see `output_validator`) checks the output against `output_type`; `missing` is the error of a case
    whose stored data could not be read at all. A case is refused (its one-line error) rather than re-scored on
    something else than what its task returned: an output stored for other inputs, an output cut at
    `max_value_chars`, or one whose type JSON did not keep and no return annotation rebuilds.
    """

    async def task(inputs: Any, **_fixtures: Any) -> Any:
        if case is None:
            raise RescoreError(missing or f'run {run_id} stored no trace for {nodeid}; run it normally with pytest')
        if case.inputs_digest is not None and inputs_digest(jsonable(inputs)) != case.inputs_digest:
            raise RescoreError(
                f'the inputs of {nodeid} changed since run {run_id} stored its output; run it normally with pytest'
            )
        replay_task_spans(case, run_id)
        if case.task_error is not None:
            raise StoredTaskError(f'{case.task_error} (stored by run {run_id})')
        if not case.has_output:
            raise RescoreError(f'run {run_id} stored no output for {nodeid}; run it normally with pytest')
        if was_cut(case.output):
            raise RescoreError(
                f'run {run_id} stored the output of {nodeid} cut at max_value_chars, so it cannot be re-scored; '
                'raise max_value_chars and run it normally with pytest'
            )
        if case.scrubbed is not None:
            raise RescoreError(
                f'run {run_id} stored the output of {nodeid} scrubbed ({case.scrubbed}), so it cannot be re-scored; '
                'run it normally with pytest'
            )
        if validate is None:
            if case.output_type is not None:
                raise RescoreError(
                    f'run {run_id} stored the output of {nodeid} as JSON, which does not keep its type '
                    f'({case.output_type}); give the suite function a return annotation, so that rescore can rebuild it'
                )
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


@dataclass(frozen=True)
class StandIns:
    """What a re-scoring suite run uses in place of its task: each case's stored output, and its judge's cassettes."""

    run_id: str
    """The run whose outputs are re-scored."""
    stored: dict[str, StoredCase]
    """What the run stored, by node id (a case it did not store is left out)."""
    missing: str | None
    """Why nothing could be read (the store is off, missing or corrupt): every case's error."""
    output_type: Any
    validate: Callable[[Any], Any] | None
    task_name: str
    replay: ReplayConfig | None
    """The cassettes an LLM judge replays from (see `run.replay.rescore_replay`)."""

    def duration(self, nodeid: str) -> float | None:
        """The task duration the stored run measured for one case (None when it stored none)."""
        stored = self.stored.get(nodeid)
        return None if stored is None else stored.task_duration

    def task(self, nodeid: str) -> Callable[..., Any]:
        """The stand-in task of one case (see `stored_task`)."""
        stored = self.stored.get(nodeid)
        return stored_task(
            stored, self.run_id, self.output_type, self.task_name, nodeid, self.missing, validate=self.validate
        )


def stand_ins(settings: Settings, runtime: SuiteRuntime, suite_id: str, nodeids: Sequence[str]) -> StandIns:
    """The stand-ins of a suite run's cases, from what run `settings.rescore` stored of them.

    A store problem becomes every case's error (one line each), not a crash of the session.
    """
    from ..collect.dataset import task_types
    from .replay import rescore_replay

    run_id = settings.rescore
    assert run_id is not None
    stored: dict[str, StoredCase] = {}
    missing: str | None = None
    if settings.store is None:
        missing = 're-scoring needs the local trace store, and evaltrace_store is off'
    else:
        try:
            report_copy = os.environ.get(REPORT_ENV)
            in_report = report_cases(report_copy, run_id) if report_copy else {}
            stored = load_stored_cases(settings.store, run_id, nodeids, in_report)
        except StoreError as e:
            missing = str(e)
    _, output_type, _ = task_types(runtime.fn, method=runtime.method)
    replay = rescore_replay(settings, runtime, suite_id)  # recorded judge traffic replays: re-scoring offline
    return StandIns(run_id, stored, missing, output_type, output_validator(output_type), runtime.fn.__name__, replay)
