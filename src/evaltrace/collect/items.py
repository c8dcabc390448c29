"""Collection: a `@evaltrace.suite` function is parametrized over its dataset's cases, one pytest item per case.

The suite function's first parameter (after `self`, for a method of a test class) is parametrized with the cases
(ids are the case names, so node ids read `evals/test_x.py::test_fn[case name]`); its other parameters are ordinary
fixtures. The items are plain `pytest.Function`s, so `-k`, `--deselect`, `--lf` and `--co` behave as everywhere in
pytest; the `filter` setting then deselects cases by metadata (`deselect_by_filter`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic_evals import Case, Dataset

from ..judge.case import jsonable
from ..results.case import CaseResult
from ..settings.filter import CaseFilter
from .dataset import DatasetError, load_dataset, resolve_dataset_path, task_types, validate_dataset_inputs
from .suite import SuiteSpec

__all__ = (
    'CaseParam',
    'DatasetProblem',
    'SuiteRuntime',
    'case_param',
    'deselect_by_filter',
    'fail_node_id_collisions',
    'parametrize_suite',
    'selects_some_cases_only',
    'suite_run_id',
)


@dataclass(eq=False)
class SuiteRuntime:
    """One collected suite function: its dataset, and the results of the cases run so far (by node id)."""

    suite_id: str
    name: str
    fn: Callable[..., Any]
    spec: SuiteSpec
    dataset: Dataset[Any, Any, Any]
    dataset_path: str | None
    inputs_param: str
    method: bool = False
    """The suite is a method of a test class: `fn` takes `self` before the case inputs."""
    results: dict[str, CaseResult] = field(default_factory=dict[str, CaseResult])

    def bound_fn(self, item: pytest.Item) -> Callable[..., Any]:
        """The suite function as pytest calls it for `item`: a method bound to that item's class instance.

        pytest gives each item of a class a fresh instance, and the item's method fixtures set attributes on it;
        a suite run's cases all use the instance of the item whose fixture values they share.
        """
        return getattr(item, 'obj') if getattr(item, 'instance', None) is not None else self.fn  # noqa: B009


@dataclass(frozen=True, eq=False)
class CaseParam:
    """The parameter value of one case item: which case of which suite, and which repeat."""

    suite: SuiteRuntime
    case: Case[Any, Any, Any]
    case_name: str
    repeat: int | None
    repeats: int

    def __repr__(self) -> str:
        return f'<case {self.case_name}>'

    @property
    def case_id(self) -> str:
        """The case's part of its item's id."""
        return self.case_name if self.repeat is None else f'{self.case_name}#{self.repeat}'


@dataclass(frozen=True, eq=False)
class DatasetProblem:
    """The parameter value of an item that cannot run its case: the single item that stands for a suite whose dataset
    cannot be used, or a case item whose node id another item has too (see `fail_node_id_collisions`)."""

    error: DatasetError | str
    what: str = 'bad dataset'

    @property
    def message(self) -> str:
        """What the item's setup fails with."""
        return f'evaltrace: {self.what}: {self.error}'


def fail_node_id_collisions(items: Sequence[pytest.Item]) -> None:
    """Make the case items that share a node id errors of their own, so that no case is reported as another's.

    pytest joins stacked parameter ids with `-` and does not make the joined ids unique: case `a` under `b-c` and
    case `a-b` under `c` are both `[a-b-c]`. Every result, job and report line is keyed by node id, so two such items
    would swap or lose results. Each becomes an error naming the id and both cases; their cases never run.
    """
    by_nodeid: dict[str, list[tuple[pytest.Item, CaseParam]]] = {}
    for item in items:
        param = case_param(item)
        if isinstance(param, CaseParam):
            by_nodeid.setdefault(item.nodeid, []).append((item, param))
    for nodeid, group in by_nodeid.items():
        if len(group) < 2:
            continue
        cases = ', '.join(f'case {param.case_id!r} of {suite_run_id(item, param)}' for item, param in group)
        problem = DatasetProblem(
            f'{nodeid} is the id of {len(group)} items ({cases}), so their results cannot be told apart: give the '
            'cases or the other parameters ids that do not join into the same text (pytest.param(..., id=...))',
            what='node id collision',
        )
        for item, param in group:
            callspec: Any = getattr(item, 'callspec')  # noqa: B009  (a case item always has one)
            callspec.params[param.suite.inputs_param] = problem


def case_param(item: pytest.Item) -> CaseParam | DatasetProblem | None:
    """The eval case an item runs, or None for any other item."""
    callspec = getattr(item, 'callspec', None)
    if callspec is None:
        return None
    for value in callspec.params.values():
        if isinstance(value, CaseParam | DatasetProblem):
            return value
    return None


def suite_run_id(item: pytest.Item, param: CaseParam) -> str:
    """The suite run an item belongs to: its suite's node id, with every parameter id but the case's.

    `test_x.py::test_fn[case-True]` belongs to `test_x.py::test_fn[True]`: the parametrize marks, parametrized
    fixtures and class or module parameters pick the suite run; the case picks the item within it.
    """
    base = param.suite.suite_id
    callspec: Any = getattr(item, 'callspec', None)
    ids: list[str] = [str(i) for i in getattr(callspec, '_idlist', ())]
    if param.case_id in ids:
        ids.remove(param.case_id)
    elif callspec is not None:  # pytest made the id unique (or renamed it): key on the other parameters' indices
        ids = [f'{k}{v}' for k, v in callspec.indices.items() if k != param.suite.inputs_param]
    return f'{base}[{"-".join(ids)}]' if ids else base


def _is_method(metafunc: pytest.Metafunc) -> bool:
    """Whether the suite function is a method of a test class (pytest passes `self`; a staticmethod takes none)."""
    cls: type[Any] | None = getattr(metafunc, 'cls', None)  # pytest leaves `Metafunc.cls` untyped
    if cls is None:
        return False
    return not isinstance(inspect.getattr_static(cls, metafunc.function.__name__, None), staticmethod)


def _load(metafunc: pytest.Metafunc, spec: SuiteSpec, method: bool) -> tuple[Dataset[Any, Any, Any], str | None]:
    if isinstance(spec.dataset, Dataset):
        input_type, _, _ = task_types(metafunc.function, method=method)
        if not spec.dataset.cases:  # else pytest only shows an "empty parameter set" skip, as for an empty file
            raise DatasetError(f'dataset {spec.dataset.name!r}: the dataset has no cases')
        return validate_dataset_inputs(spec.dataset, input_type, f'dataset {spec.dataset.name!r}'), None
    rootdir = metafunc.config.rootpath
    path = resolve_dataset_path(spec.dataset, rootdir, metafunc.definition.path.parent)
    try:
        display = str(path.relative_to(rootdir))
    except ValueError:
        display = str(path)
    input_type, output_type, _ = task_types(metafunc.function, method=method)
    return load_dataset(path, input_type, output_type, spec.evaluator_types, display), display


def parametrize_suite(metafunc: pytest.Metafunc, spec: SuiteSpec, skip: str | None) -> None:
    """Parametrize a suite function over its cases (and repeats)."""
    fn = metafunc.function
    method = _is_method(metafunc)
    _, _, inputs_param = task_types(fn, method=method)
    assert inputs_param is not None
    marks = [pytest.mark.skip(reason=skip)] if skip is not None else []
    try:
        dataset, display = _load(metafunc, spec, method)
    except DatasetError as e:
        metafunc.parametrize(inputs_param, [pytest.param(DatasetProblem(e), id='dataset-error', marks=marks)])
        return
    suite_id = f'{metafunc.definition.nodeid.split("[", 1)[0]}'
    runtime = SuiteRuntime(suite_id, spec.name or fn.__name__, fn, spec, dataset, display, inputs_param, method)
    params: list[Any] = []
    for index, case in enumerate(dataset.cases, 1):
        case_name = case.name or f'Case {index}'
        for repeat in range(1, spec.repeat + 1):
            value = CaseParam(runtime, case, case_name, repeat if spec.repeat > 1 else None, spec.repeat)
            params.append(pytest.param(value, id=value.case_id, marks=marks))
    metafunc.parametrize(inputs_param, params)


def selects_some_cases_only(config: pytest.Config, case_filter: CaseFilter | None) -> bool:
    """Whether the command line runs some cases only (`-k`, `-m`, `--deselect`, `--lf`, the filter, a file or node
    id argument): the baseline's other cases were then not run, rather than removed. Read from the options, so the
    xdist controller, which collects nothing, knows it too."""
    narrowing = ('keyword', 'markexpr', 'deselect', 'lf')
    if case_filter is not None or any(config.getoption(name, None) for name in narrowing):
        return True
    return any('::' in arg or arg.endswith('.py') for arg in config.args)


def deselect_by_filter(config: pytest.Config, items: list[pytest.Item], case_filter: CaseFilter) -> None:
    """Keep in `items` (in place) the eval cases whose metadata matches the filter; deselect the other cases.

    Items that are no eval case (plain tests, a dataset-error item) are left alone: the filter selects cases.
    """
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    matched: dict[int, bool] = {}  # by case: its repeats share one verdict, and its metadata is converted once
    for item in items:
        param = case_param(item)
        if isinstance(param, CaseParam):
            key = id(param.case)
            if key not in matched:
                matched[key] = case_filter.matches(jsonable(param.case.metadata))
            (keep if matched[key] else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
