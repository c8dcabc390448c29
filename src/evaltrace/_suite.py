"""The binding between a pytest function and a Pydantic Evals dataset: `@evaltrace.suite(...)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic_ai.retries import RetryConfig
from pydantic_evals import Dataset
from pydantic_evals.evaluators import Evaluator
from pydantic_evals.reporting import EvaluationReport

from ._gates import Gate
from ._settings import RECORD_CHOICES

__all__ = ('SUITE_ATTR', 'SuiteSpec', 'suite')

SUITE_ATTR = '__evaltrace_suite__'
F = TypeVar('F', bound=Callable[..., Any])


@dataclass(frozen=True)
class SuiteSpec:
    """Everything `@evaltrace.suite(...)` declares about one eval suite."""

    dataset: str | Path | Dataset[Any, Any, Any]
    evaluator_types: Sequence[type[Evaluator[Any, Any, Any]]] = ()
    max_concurrency: int | None = None
    retry_task: RetryConfig | None = None
    retry_evaluators: RetryConfig | None = None
    repeat: int = 1
    pass_k: int | None = None
    metadata: Mapping[str, Any] | None = None
    lifecycle: Any = None
    gate: Gate | None = None
    min_scores: Mapping[str, float] = field(default_factory=dict[str, float])
    timeout: float | None = None
    name: str | None = None
    report_check: Callable[[EvaluationReport[Any, Any, Any]], bool | None] | None = None
    record: str | None = None


def suite(
    dataset: str | Path | Dataset[Any, Any, Any],
    *,
    evaluator_types: Sequence[type[Evaluator[Any, Any, Any]]] = (),
    max_concurrency: int | None = None,
    retry_task: RetryConfig | None = None,
    retry_evaluators: RetryConfig | None = None,
    repeat: int = 1,
    pass_k: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    lifecycle: Any = None,
    gate: Gate | None = None,
    min_scores: Mapping[str, float] | None = None,
    timeout: float | None = None,
    name: str | None = None,
    report_check: Callable[[EvaluationReport[Any, Any, Any]], bool | None] | None = None,
    record: str | None = None,
) -> Callable[[F], F]:
    """Bind a pytest function to a Pydantic Evals dataset: each case becomes its own pytest item.

    The function's first parameter receives one case's `inputs` (its annotation, if any, validates them); its other
    parameters are pytest fixtures. It returns the task output, and may be `async`.

    Args:
        dataset: A dataset file (YAML or JSON; relative paths are taken from the rootdir, then the test module's
            folder) or a `pydantic_evals.Dataset`.
        evaluator_types: Custom evaluator classes the dataset file names.
        max_concurrency: How many cases run at once (default: the `max_concurrency` setting).
        retry_task: Retry configuration for the task, as in `Dataset.evaluate`.
        retry_evaluators: Retry configuration for the evaluators, as in `Dataset.evaluate`.
        repeat: Run each case this many times; there is one pytest item per case and repeat.
        pass_k: With `repeat`, a case passes when at least this many of its repeats pass (default: all).
        metadata: Experiment metadata, as in `Dataset.evaluate`.
        lifecycle: A `pydantic_evals.lifecycle.CaseLifecycle` class for per-case setup and teardown.
        gate: Aggregate thresholds. Under a gate, failing cases are listed but only a failed gate fails the session.
        min_scores: Per-case score thresholds: a case whose named score is below its threshold fails.
        timeout: Per-case timeout in seconds around task and evaluators (default: the `timeout` setting).
        name: The suite's name in reports (default: the function's name).
        report_check: Called with each suite run's `EvaluationReport` (its cases, and the analyses of the dataset's
            report evaluators) once its last case has ended; returning False or raising fails the suite run.
        record: This suite's record mode when the `record` setting is not set: `once`, `new`, `all`, `none` or
            `off` (default: off, live).
    """
    if repeat < 1:
        raise ValueError(f'repeat must be >= 1, got {repeat}')
    if pass_k is not None and not 1 <= pass_k <= repeat:
        raise ValueError(f'pass_k must be between 1 and repeat ({repeat}), got {pass_k}')
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f'max_concurrency must be >= 1, got {max_concurrency}')
    if record is not None and str(record).lower() not in RECORD_CHOICES:
        raise ValueError(f'record must be one of {", ".join(RECORD_CHOICES)}, got {record!r}')
    spec = SuiteSpec(
        dataset=dataset,
        evaluator_types=tuple(evaluator_types),
        max_concurrency=max_concurrency,
        retry_task=retry_task,
        retry_evaluators=retry_evaluators,
        repeat=repeat,
        pass_k=pass_k,
        metadata=metadata,
        lifecycle=lifecycle,
        gate=gate,
        min_scores=dict(min_scores or {}),
        timeout=timeout,
        name=name,
        report_check=report_check,
        record=record,
    )

    def decorate(fn: F) -> F:
        setattr(fn, SUITE_ATTR, spec)
        return pytest.mark.evaltrace(fn)

    return decorate
