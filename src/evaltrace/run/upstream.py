"""The private parts of pydantic-evals that evaltrace calls, in one place, checked when this module is imported.

evaltrace runs each case on its own (in its own trace, as soon as the scheduler starts it) and shapes the suite
run's experiment around the cases (see run.experiment), so it calls the functions `Dataset.evaluate` is made of rather
than `Dataset.evaluate` itself. They are private: their signatures are checked here, and a pydantic-evals release
that changes one fails at once with an error that names it, not with a wrong result.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any, cast

from pydantic import TypeAdapter
from pydantic_evals import _utils as evals_utils  # pyright: ignore[reportPrivateUsage]
from pydantic_evals import dataset as evals_dataset
from pydantic_evals.evaluators import ReportEvaluatorContext
from pydantic_evals.reporting import EvaluationReport

__all__ = (
    'EXPECTED_SIGNATURES',
    'UpstreamChanged',
    'check_upstream',
    'evaluation_results_adapter',
    'logfire_span',
    'run_report_evaluators',
    'run_task_and_evaluators',
    'set_experiment_span_attributes',
)

EXPECTED_SIGNATURES: Mapping[str, tuple[str, ...]] = {
    '_run_task_and_evaluators': (
        'task',
        'case',
        'report_case_name',
        'dataset_evaluators',
        'retry_task',
        'retry_evaluators',
        'source_case_name',
        'lifecycle',
    ),
    '_run_report_evaluators': ('report_evaluators', 'report_ctx'),
    '_set_experiment_span_attributes': ('eval_span', 'report', 'metadata', 'n_cases', 'repeat'),
    '_evaluation_results_adapter': (),
}


class UpstreamChanged(ImportError):
    """The installed pydantic-evals no longer has a private function evaltrace calls, as evaltrace calls it."""


def check_upstream(module: Any = evals_dataset) -> None:
    """Raise `UpstreamChanged`, naming the function, when one of the private functions is missing or changed."""
    for name, params in EXPECTED_SIGNATURES.items():
        found = getattr(module, name, None)
        if found is None:
            raise UpstreamChanged(
                f'evaltrace needs pydantic_evals.dataset.{name}, which pydantic-evals {version("pydantic-evals")} '
                'does not have; install a pydantic-evals version evaltrace supports (see its pyproject.toml)'
            )
        if params and tuple(inspect.signature(found).parameters) != params:
            got = tuple(inspect.signature(found).parameters)
            raise UpstreamChanged(
                f'evaltrace calls pydantic_evals.dataset.{name}{params}, but pydantic-evals '
                f'{version("pydantic-evals")} has {name}{got}; install a pydantic-evals version evaltrace supports'
            )


check_upstream()

run_task_and_evaluators: Callable[..., Any] = getattr(evals_dataset, '_run_task_and_evaluators')  # noqa: B009
set_experiment_span_attributes: Callable[..., None] = getattr(evals_dataset, '_set_experiment_span_attributes')  # noqa: B009
evaluation_results_adapter = cast(TypeAdapter[Any], getattr(evals_dataset, '_evaluation_results_adapter'))  # noqa: B009
logfire_span: Callable[..., Any] = evals_utils.logfire_span  # pyright: ignore[reportPrivateUsage]
_run_report_evaluators: Callable[..., Any] = getattr(evals_dataset, '_run_report_evaluators')  # noqa: B009


async def run_report_evaluators(
    context: contextvars.Context,
    evaluators: list[Any],
    report: EvaluationReport[Any, Any, Any],
    metadata: dict[str, Any] | None,
) -> None:
    """Run the dataset's report evaluators on `report` (appending analyses or failures), in a copy of `context`."""
    report_ctx = ReportEvaluatorContext[Any, Any, Any](name=report.name, report=report, experiment_metadata=metadata)
    await asyncio.get_running_loop().create_task(_run_report_evaluators(evaluators, report_ctx), context=context.copy())
