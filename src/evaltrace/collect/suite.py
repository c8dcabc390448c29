"""The binding between a pytest function and a Pydantic Evals dataset: `@evaltrace.suite(...)`."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic_ai.retries import RetryConfig
from pydantic_evals import Dataset
from pydantic_evals.evaluators import Evaluator
from pydantic_evals.reporting import EvaluationReport

from ..judge.gates import Gate, is_whole_number
from ..settings.values import RECORD_CHOICES

__all__ = ('SUITE_ATTR', 'SuiteSpec', 'suite', 'suite_problem')

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

    The function's first parameter (after `self`, for a method of a test class) receives one case's `inputs` (its
    annotation, if any, validates them); its other parameters are pytest fixtures. It returns the task output, and
    may be `async`. A setting out of range (or a function with no parameter) makes this suite one erroring item at
    collection, not an import error of its module.

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
    # Nothing is checked here: the decorator runs while its module is imported, where an exception would fail every
    # suite of the module (and stop the session). `suite_problem` checks at collection, for this suite alone.
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


def suite_problem(fn: Callable[..., Any], spec: SuiteSpec) -> str | None:
    """What makes a suite unusable, in one line naming the setting, or None.

    Checked at collection rather than in the decorator (see `suite`), so a bad suite is its own error item.
    """
    if not inspect.signature(fn).parameters:
        return f'a suite function takes the case inputs as its first parameter; {fn.__name__} takes none'
    repeat = spec.repeat
    if not is_whole_number(repeat) or repeat < 1:
        return f'repeat must be a whole number >= 1, got {repeat!r}'
    if spec.pass_k is not None and (not is_whole_number(spec.pass_k) or not 1 <= spec.pass_k <= repeat):
        return f'pass_k must be a whole number between 1 and repeat ({repeat}), got {spec.pass_k!r}'
    if spec.max_concurrency is not None and (not is_whole_number(spec.max_concurrency) or spec.max_concurrency < 1):
        return f'max_concurrency must be a whole number >= 1, got {spec.max_concurrency!r}'
    if spec.record is not None and str(spec.record).lower() not in RECORD_CHOICES:
        return f'record must be one of {", ".join(RECORD_CHOICES)}, got {spec.record!r}'
    timeout: Any = spec.timeout
    if timeout is not None and not (
        isinstance(timeout, int | float) and not isinstance(timeout, bool) and math.isfinite(timeout) and timeout > 0
    ):
        return f'timeout must be a number of seconds > 0, got {timeout!r}'
    gate: Any = spec.gate
    if gate is not None:
        if not isinstance(gate, Gate):
            return f'gate must be an evaltrace.Gate, got {gate!r}'
        problem = gate.problem()
        if problem is not None:
            return f'gate: {problem}'
    return None
