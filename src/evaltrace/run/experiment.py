"""A suite run as one Pydantic Evals experiment: its span, its case spans, its report and report evaluators.

`Dataset.evaluate` opens one experiment span (`evaluate {name}`), runs each case under it in a `case: {case_name}` span,
builds an `EvaluationReport`, runs the dataset's report evaluators on it, and sets the experiment's summary attributes.
evaltrace runs each case in a trace of its own instead (see trace.tracing), so it shapes the experiment the same way
around them: the experiment span is opened when the suite run starts, each case gets its `case: …` span in the
experiment's trace with the attributes pydantic-evals sets, an OpenTelemetry link to the case's own trace and the
attribute `evaltrace.case_trace_id`, and the report is built and judged by the report evaluators when the suite run's
last case has ended. Logfire's Evals tab then lists one experiment per suite run.

Every context manager here is entered and left inside a `contextvars.Context` of its own, so the experiment never
becomes the current span of a case (whose trace stays its own) nor of the scheduler.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from pydantic_evals import Case, Dataset
from pydantic_evals.reporting import EvaluationReport, ReportCase, ReportCaseFailure

from ..names import CASE_TRACE_ATTRIBUTE, OPERATION_ATTRIBUTE
from ..trace.links import experiment_url
from .upstream import evaluation_results_adapter, logfire_span, run_report_evaluators, set_experiment_span_attributes

__all__ = (
    'CASE_TRACE_ATTRIBUTE',
    'CaseSpan',
    'Experiment',
    'Outcome',
    'experiment_summary',
    'render_table',
    'run_report_check',
)


Outcome = ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any]


@dataclass(eq=False)
class CaseSpan:
    """A case's `case: …` span in the experiment's trace, open while the case runs."""

    stack: ExitStack
    context: contextvars.Context
    span: Any


@dataclass(eq=False)
class Experiment:
    """One suite run's experiment: open from its first case's start to its report's end."""

    name: str
    task_name: str
    dataset: Dataset[Any, Any, Any]
    metadata: Mapping[str, Any] | None
    repeat: int
    n_cases: int
    case_spans: bool = True
    """Whether each case gets its `case: …` span here. Only worth it where something shows experiments (Logfire, an
    OTLP backend, a test exporter): the span costs about as much as the rest of a trivial case (bench_overhead.py),
    and the local store already keeps each case's own trace. The report and its evaluators do not depend on it."""
    context: contextvars.Context = field(default_factory=contextvars.Context)
    stack: ExitStack = field(default_factory=ExitStack)
    span: Any = None
    outcomes: dict[str, Outcome] = field(default_factory=dict[str, Outcome])
    """By node id, in the order the cases ended."""
    report: EvaluationReport[Any, Any, Any] | None = None

    def start(self) -> None:
        extra: dict[str, Any] = {OPERATION_ATTRIBUTE: 'experiment'}
        if self.metadata is not None:
            extra['metadata'] = dict(self.metadata)
        if self.repeat > 1:
            extra['logfire.experiment.repeat'] = self.repeat
        span_cm = logfire_span(
            'evaluate {name}',
            name=self.name,
            task_name=self.task_name,
            dataset_name=self.dataset.name,
            n_cases=self.n_cases,
            **extra,
        )
        self.span = self.context.run(self.stack.enter_context, span_cm)

    @property
    def ids(self) -> tuple[str | None, str | None]:
        ctx = getattr(self.span, 'context', None)
        if ctx is None:
            return None, None
        return f'{ctx.trace_id:032x}', f'{ctx.span_id:016x}'

    def open_case(self, case: Case[Any, Any, Any], report_name: str, source_case_name: str | None) -> CaseSpan | None:
        """Open a case's span under the experiment, as `_run_task_and_evaluators` does under `evaluate`."""
        if not self.case_spans:
            return None
        context = self.context.copy()
        stack = ExitStack()
        span_cm = logfire_span(
            'case: {case_name}',
            task_name=self.task_name,
            case_name=report_name,
            inputs=case.inputs,
            metadata=case.metadata,
            expected_output=case.expected_output,
        )
        span = context.run(stack.enter_context, span_cm)
        if source_case_name is not None:
            span.set_attribute('logfire.experiment.source_case_name', source_case_name)
        return CaseSpan(stack, context, span)

    def close_case(
        self, handle: CaseSpan | None, nodeid: str, outcome: Outcome, trace_id: str | None, span_id: str | None
    ) -> None:
        """Record the case's outcome for the report; give its span the attributes pydantic-evals gives it, a link to
        the case's trace, and end it."""
        self.outcomes[nodeid] = outcome
        if handle is None:
            return
        span = handle.span
        if isinstance(outcome, ReportCase):
            span.set_attribute('output', outcome.output)
            span.set_attribute('task_duration', outcome.task_duration)
            span.set_attribute('metrics', outcome.metrics)
            span.set_attribute('attributes', outcome.attributes)
            span.set_attribute('assertions', evaluation_results_adapter.dump_python(outcome.assertions))
            span.set_attribute('scores', evaluation_results_adapter.dump_python(outcome.scores))
            span.set_attribute('labels', evaluation_results_adapter.dump_python(outcome.labels))
        else:
            span.set_attribute('error_message', outcome.error_message)
        if trace_id is not None and span_id is not None:
            span.set_attribute(CASE_TRACE_ATTRIBUTE, trace_id)
            linked = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1))
            span.add_link(NonRecordingSpan(linked).get_span_context())
        handle.context.run(handle.stack.close)

    def abandon_case(self, handle: CaseSpan | None) -> None:
        """End the span of a case that was cancelled: it stays out of the report."""
        if handle is None:
            return
        handle.span.set_attribute('error_message', 'cancelled')
        handle.context.run(handle.stack.close)

    async def finish(self) -> EvaluationReport[Any, Any, Any]:
        """Build the report of the cases that ended, run the report evaluators, and end the experiment span.

        A report evaluator that raises is recorded in `report.report_evaluator_failures` (pydantic-evals' own
        handling); no case result is lost.
        """
        trace_id, span_id = self.ids
        cases = [o for o in self.outcomes.values() if isinstance(o, ReportCase)]
        failures = [o for o in self.outcomes.values() if isinstance(o, ReportCaseFailure)]
        metadata = dict(self.metadata) if self.metadata is not None else None
        report = EvaluationReport[Any, Any, Any](
            name=self.name,
            cases=cases,
            failures=failures,
            experiment_metadata=metadata,
            span_id=span_id,
            trace_id=trace_id,
            dataset_name=self.dataset.name,
        )
        try:
            if self.dataset.report_evaluators:
                await run_report_evaluators(self.context, self.dataset.report_evaluators, report, metadata)
            self.context.run(set_experiment_span_attributes, self.span, report, metadata, self.n_cases, self.repeat)
        finally:
            self.context.run(self.stack.close)
        self.report = report
        return report


def run_report_check(
    check: Callable[[EvaluationReport[Any, Any, Any]], bool | None] | None, report: EvaluationReport[Any, Any, Any]
) -> list[dict[str, Any]]:
    """Call a suite's `report_check` on its report: [] without one, else its name, whether it held, and why not."""
    if check is None:
        return []
    name = getattr(check, '__name__', type(check).__name__)
    try:
        held = check(report) is not False
    except Exception as e:
        return [{'name': name, 'passed': False, 'error': f'{type(e).__name__}: {e}'}]
    return [{'name': name, 'passed': held, 'error': None if held else 'returned False'}]


def experiment_summary(
    report: EvaluationReport[Any, Any, Any],
    project_url: str | None,
    checks: list[dict[str, Any]],
    table: str | None = None,
) -> dict[str, Any]:
    """What report.json says of a suite run's experiment: its ids and link, analyses, failures, report checks."""
    averages = report.averages()
    return {
        'name': report.name,
        'trace_id': report.trace_id,
        'span_id': report.span_id,
        'url': experiment_url(project_url, report.trace_id, report.span_id),
        'analyses': [a.model_dump(mode='json') for a in report.analyses],
        'report_evaluator_failures': [
            {'name': f.name, 'error_message': f.error_message} for f in report.report_evaluator_failures
        ],
        'metric_averages': dict(averages.metrics) if averages is not None else {},
        'report_checks': checks,
        'table': table,
    }


def _baseline_report(
    report: EvaluationReport[Any, Any, Any], baseline_cases: Mapping[str, Mapping[str, Any]]
) -> EvaluationReport[Any, Any, Any]:
    """The committed baseline of a suite run as an `EvaluationReport`, for `render(baseline=...)` to compare against.

    A baseline keeps per case its assertions (held or not) and score averages; the evaluators' specs are taken from
    the current report's results of the same name.
    """
    cases: list[ReportCase[Any, Any, Any]] = []
    for case in report.cases:
        base = baseline_cases.get(case.source_case_name or case.name)
        if base is None:
            continue
        scores = {
            k: dataclasses.replace(v, value=base['scores'][k], reason=None)
            for k, v in case.scores.items()
            if base.get('scores', {}).get(k) is not None
        }
        assertions = {
            k: dataclasses.replace(v, value=bool(base['assertions'][k]), reason=None)
            for k, v in case.assertions.items()
            if k in base.get('assertions', {})
        }
        cases.append(dataclasses.replace(case, scores=scores, assertions=assertions, labels={}, metrics={}))
    return EvaluationReport[Any, Any, Any](name=f'{report.name} (baseline)', cases=cases)


def render_table(
    report: EvaluationReport[Any, Any, Any],
    which: str,
    failing: set[str],
    baseline_cases: Mapping[str, Mapping[str, Any]] | None,
) -> str | None:
    """pydantic-evals' own table of a suite run (`which`: all, or failures: only the `failing` case names)."""
    if which == 'none' or (which == 'failures' and not failing):
        return None
    shown = report
    if which == 'failures':
        shown = dataclasses.replace(
            report,
            cases=[c for c in report.cases if c.name in failing],
            failures=[f for f in report.failures if f.name in failing],
        )
    baseline = _baseline_report(report, baseline_cases) if baseline_cases else None
    return shown.render(width=120, baseline=baseline, include_reasons=which == 'failures')
