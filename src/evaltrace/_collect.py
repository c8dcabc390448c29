"""Collection: a `@evaltrace.suite` function becomes one pytest item per dataset case (and repeat)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic_evals import Dataset

from ._dataset import DatasetError, load_dataset, resolve_dataset_path, task_types
from ._results import CaseResult
from ._run import CaseWork
from ._suite import SuiteSpec

__all__ = ('CaseFailed', 'DatasetErrorItem', 'EvalCaseItem', 'SuiteRuntime', 'collect_suite')


@dataclass(eq=False)
class SuiteRuntime:
    """One collected suite: its function, its dataset, and the results of the cases run so far."""

    suite_id: str
    name: str
    fn: Callable[..., Any]
    spec: SuiteSpec
    dataset: Dataset[Any, Any, Any]
    dataset_path: str | None
    fixture_names: tuple[str, ...]
    results: dict[str, CaseResult] = field(default_factory=dict[str, CaseResult])
    started: set[str] = field(default_factory=set[str])


class CaseFailed(Exception):
    """Raised by a case item whose case failed; pytest shows `message` without a harness traceback."""

    def __init__(self, result: CaseResult, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


class EvalCaseItem(pytest.Function):
    """One dataset case (one repeat of it) as a pytest item. Its suite runs the selected cases as one batch."""

    evaltrace_suite: SuiteRuntime
    evaltrace_work: CaseWork

    def runtest(self) -> None:
        from .plugin import eval_session

        eval_session(self.config).run_item(self)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | Any:
        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.message
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        path, lineno, _ = super().reportinfo()
        return path, lineno, self.name


class DatasetErrorItem(pytest.Item):
    """Stands for a suite whose dataset cannot be used: it errors at setup with the dataset error, alone."""

    def __init__(self, *, error: DatasetError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def setup(self) -> None:
        raise self.error

    def runtest(self) -> None:  # pragma: no cover - setup always raises
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | Any:
        if isinstance(excinfo.value, DatasetError):
            return f'evaltrace: bad dataset: {excinfo.value}'
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.path, None, self.name


def _fixture_placeholder(fn: Callable[..., Any]) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """A stand-in whose signature holds only the fixture parameters, so pytest resolves fixtures but not `inputs`."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1:]

    def placeholder(**kwargs: Any) -> None:  # never called: EvalCaseItem.runtest runs the suite
        raise AssertionError('evaltrace placeholder called')

    placeholder.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    placeholder.__name__ = fn.__name__
    placeholder.__qualname__ = fn.__qualname__
    placeholder.__module__ = fn.__module__
    placeholder.__doc__ = fn.__doc__
    if hasattr(fn, 'pytestmark'):
        placeholder.pytestmark = fn.pytestmark  # type: ignore[attr-defined]
    return placeholder, tuple(p.name for p in params)


def _load(
    collector: pytest.Collector, fn: Callable[..., Any], spec: SuiteSpec
) -> tuple[Dataset[Any, Any, Any], str | None]:
    if isinstance(spec.dataset, Dataset):
        return spec.dataset, None
    rootdir = collector.config.rootpath
    path = resolve_dataset_path(spec.dataset, rootdir, collector.path.parent)
    try:
        display = str(path.relative_to(rootdir))
    except ValueError:
        display = str(path)
    input_type, output_type, _ = task_types(fn)
    return load_dataset(path, input_type, output_type, spec.evaluator_types, display), display


def collect_suite(
    collector: pytest.Collector, name: str, fn: Callable[..., Any], spec: SuiteSpec, skip: str | None
) -> list[pytest.Item]:
    """The items of one suite: a case item per case and repeat, or one error item when the dataset is bad."""
    suite_id = f'{collector.nodeid}::{name}'
    if skip is not None:
        item = pytest.Function.from_parent(collector, name=name, callobj=lambda: None)
        item.add_marker(pytest.mark.skip(reason=skip))
        return [item]
    try:
        dataset, display = _load(collector, fn, spec)
    except DatasetError as e:
        return [DatasetErrorItem.from_parent(collector, name=name, error=e)]
    placeholder, fixture_names = _fixture_placeholder(fn)
    runtime = SuiteRuntime(suite_id, spec.name or name, fn, spec, dataset, display, fixture_names)
    items: list[pytest.Item] = []
    for index, case in enumerate(dataset.cases, 1):
        case_name = case.name or f'Case {index}'
        for repeat in range(1, spec.repeat + 1):
            item_name = f'{name}[{case_name}]' if spec.repeat == 1 else f'{name}[{case_name}#{repeat}]'
            item = EvalCaseItem.from_parent(collector, name=item_name, callobj=placeholder)
            item.evaltrace_suite = runtime
            item.evaltrace_work = CaseWork(
                case=case,
                case_name=case_name,
                nodeid=item.nodeid,
                repeat=repeat if spec.repeat > 1 else None,
                repeats=spec.repeat,
            )
            items.append(item)
    return items
