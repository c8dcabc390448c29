"""A suite run as one Pydantic Evals experiment: its span, its case spans, its report and report evaluators.

`Dataset.evaluate` opens one experiment span (`evaluate {name}`), runs each case under it in a `case: {case_name}`
span, builds an `EvaluationReport`, runs the dataset's report evaluators on it, and sets the experiment's summary
attributes. evaltrace runs each case in a trace of its own instead (see _trace), so it shapes the experiment the same
way around them: the experiment span is opened when the suite run starts, each case gets its `case: …` span in the
experiment's trace with the attributes pydantic-evals sets, an OpenTelemetry link to the case's own trace and the
attribute `evaltrace.case_trace_id`, and the report is built and judged by the report evaluators when the suite run's
last case has ended. Logfire's Evals tab then lists one experiment per suite run.

Every context manager here is entered and left inside a `contextvars.Context` of its own, so the experiment never
becomes the current span of a case (whose trace stays its own) nor of the scheduler.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from pydantic_evals import Case, Dataset
from pydantic_evals.reporting import EvaluationReport, ReportCase, ReportCaseFailure

from ._links import experiment_url
from ._upstream import evaluation_results_adapter, logfire_span, run_report_evaluators, set_experiment_span_attributes

__all__ = ('CASE_TRACE_ATTRIBUTE', 'CaseSpan', 'Experiment', 'Outcome', 'experiment_summary')

CASE_TRACE_ATTRIBUTE = 'evaltrace.case_trace_id'
"""On each experiment case span: the trace id of the case's own trace."""

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
    context: contextvars.Context = field(default_factory=contextvars.Context)
    stack: ExitStack = field(default_factory=ExitStack)
    span: Any = None
    outcomes: dict[str, Outcome] = field(default_factory=dict[str, Outcome])
    """By node id, in the order the cases ended."""
    report: EvaluationReport[Any, Any, Any] | None = None

    def start(self) -> None:
        extra: dict[str, Any] = {'gen_ai.operation.name': 'experiment'}
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

    def open_case(self, case: Case[Any, Any, Any], report_name: str, source_case_name: str | None) -> CaseSpan:
        """Open a case's span under the experiment, as `_run_task_and_evaluators` does under `evaluate`."""
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
        self, handle: CaseSpan, nodeid: str, outcome: Outcome, trace_id: str | None, span_id: str | None
    ) -> None:
        """Give the case's span the attributes pydantic-evals gives it, a link to the case's trace, and end it."""
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
        self.outcomes[nodeid] = outcome

    def abandon_case(self, handle: CaseSpan) -> None:
        """End the span of a case that was cancelled: it stays out of the report."""
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


def experiment_summary(report: EvaluationReport[Any, Any, Any], project_url: str | None) -> dict[str, Any]:
    """What report.json says of a suite run's experiment: its ids and link, analyses, report evaluator failures."""
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
    }
