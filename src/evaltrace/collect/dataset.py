"""Loading a suite's dataset, with errors that name the file, the case and the field."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic_evals import Dataset
from pydantic_evals.evaluators import Evaluator
from pydantic_evals.evaluators.common import DEFAULT_EVALUATORS
from pydantic_evals.evaluators.spec import EvaluatorSpec

__all__ = ('DatasetError', 'load_dataset', 'resolve_dataset_path', 'task_types', 'validate_dataset_inputs')


# libyaml's loader when the wheel has it: parsing a 1,000-case file is several times faster.
_YAML_LOADER: Any = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)


class DatasetError(Exception):
    """A dataset that cannot be used: the message names the file, the case and the field."""


def task_types(fn: Callable[..., Any], *, method: bool = False) -> tuple[Any, Any, str | None]:
    """The task's input type (its first parameter's annotation), output type and first parameter name.

    For a `method` (a suite in a test class), the first parameter is the one after `self`.
    """
    params = list(inspect.signature(fn).parameters.values())[1 if method else 0 :]
    if not params:
        raise TypeError(f'{fn.__qualname__} must take the case inputs as its first parameter')
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: validate nothing rather than fail collection
        hints = {}
    first = params[0].name
    return hints.get(first, Any), hints.get('return', Any), first


def resolve_dataset_path(raw: str | Path, rootdir: Path, module_dir: Path) -> Path:
    path = Path(raw)
    if path.is_absolute():
        return path
    for base in (rootdir, module_dir):
        if (base / path).exists():
            return base / path
    return rootdir / path


def _case_label(data: dict[str, Any], index: int) -> str:
    cases: Any = data.get('cases')
    if isinstance(cases, list) and index < len(cast(list[Any], cases)):
        case: Any = cast(list[Any], cases)[index]
        if isinstance(case, dict):
            name = cast(dict[str, Any], case).get('name')
            if isinstance(name, str):
                return f'case {name!r} (#{index + 1})'
    return f'case #{index + 1}'


def _describe_validation_error(error: ValidationError, data: dict[str, Any], shown: int = 3) -> str:
    parts: list[str] = []
    for err in error.errors()[:shown]:
        loc = list(err['loc'])
        where = ''
        if len(loc) >= 2 and loc[0] == 'cases' and isinstance(loc[1], int):
            where = _case_label(data, loc[1]) + ', '
            loc = loc[2:]
        field = '.'.join(str(p) for p in loc) or '(top level)'
        parts.append(f'{where}field {field}: {err["msg"]}')
    more = len(error.errors()) - shown
    return '; '.join(parts) + (f' (and {more} more)' if more > 0 else '')


def _evaluator_names(specs: Any) -> list[str]:
    """The names of a list of evaluator specs, as pydantic-evals reads them (a spec it cannot read is left to its
    validation, which names the field)."""
    if not isinstance(specs, list):
        return []
    names: list[str] = []
    for spec in cast(list[Any], specs):
        try:
            names.append(EvaluatorSpec.model_validate(spec).name)
        except ValidationError:
            continue
    return names


def _unknown_evaluator(data: dict[str, Any], evaluator_types: Sequence[type[Evaluator[Any, Any, Any]]]) -> str | None:
    """The first evaluator a dataset names that neither pydantic-evals nor the suite's `evaluator_types` has, where
    it is (the dataset's evaluators, or a case by name and number) and the close match; None when every one is known.

    pydantic-evals' own error names neither the case nor a close match, and speaks of its `custom_evaluator_types`
    argument, which a suite spells `evaluator_types`.
    """
    known = [cls.get_serialization_name() for cls in (*DEFAULT_EVALUATORS, *evaluator_types)]
    places: list[tuple[str, Any]] = [("the dataset's evaluators", data.get('evaluators'))]
    cases: Any = data.get('cases')
    if isinstance(cases, list):
        for index, case in enumerate(cast(list[Any], cases)):
            if isinstance(case, dict):
                places.append((_case_label(data, index), cast(dict[str, Any], case).get('evaluators')))
    for where, specs in places:
        for name in _evaluator_names(specs):
            if name in known:
                continue
            problem = f'{where}: unknown evaluator {name!r}'
            if close := difflib.get_close_matches(name, known, n=1):
                return f'{problem}; did you mean {close[0]!r}?'
            custom = 'a custom evaluator class goes in @evaltrace.suite(..., evaluator_types=[...])'
            return f'{problem}; known: {", ".join(sorted(known))}; {custom}'
    return None


def _exception_messages(error: BaseException) -> list[str]:
    if isinstance(error, BaseExceptionGroup):
        out: list[str] = []
        for sub in error.exceptions:  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
            out.extend(_exception_messages(sub))  # pyright: ignore[reportUnknownArgumentType]
        return out
    return [str(error)]


def load_dataset(
    path: Path,
    input_type: Any,
    output_type: Any,
    evaluator_types: Sequence[type[Evaluator[Any, Any, Any]]],
    display_path: str,
) -> Dataset[Any, Any, Any]:
    """Load and validate a dataset file; inputs are validated against the task's input type."""
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as e:
        raise DatasetError(f'{display_path}: cannot read dataset file: {e.strerror or e}') from None
    except UnicodeDecodeError as e:  # a ValueError, not an OSError: it would otherwise abort the whole collection
        raise DatasetError(
            f'{display_path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})'
        ) from None
    is_json = path.suffix.lower() == '.json'
    try:
        data = json.loads(text) if is_json else yaml.load(text, Loader=_YAML_LOADER)
    except json.JSONDecodeError as e:
        raise DatasetError(f'{display_path}:{e.lineno}: not valid JSON: {e.msg}') from None
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        line = f':{mark.line + 1}' if mark is not None else ''
        problem = getattr(e, 'problem', None) or str(e)
        raise DatasetError(f'{display_path}{line}: not valid YAML: {problem}') from None
    if not isinstance(data, dict):
        raise DatasetError(f'{display_path}: a dataset must be a mapping with a `cases` list')
    data = typing.cast(dict[str, Any], data)
    data.pop('$schema', None)
    if not data.get('cases'):  # else pytest only shows an "empty parameter set" skip, with nothing about the file
        raise DatasetError(f'{display_path}: the dataset has no cases')
    if (unknown := _unknown_evaluator(data, evaluator_types)) is not None:
        raise DatasetError(f'{display_path}: {unknown}')
    dataset_type: Any = Dataset[input_type, output_type, Any]  # pyright: ignore[reportInvalidTypeArguments]
    try:
        return dataset_type.from_dict(data, evaluator_types, default_name=path.stem)
    except ValidationError as e:
        raise DatasetError(f'{display_path}: {_describe_validation_error(e, data)}') from None
    except (ValueError, TypeError, BaseExceptionGroup) as e:
        messages = _exception_messages(e)
        raise DatasetError(f'{display_path}: {"; ".join(messages[:3])}') from None


def validate_dataset_inputs(
    dataset: Dataset[Any, Any, Any], input_type: Any, display_name: str
) -> Dataset[Any, Any, Any]:
    """Validate a `Dataset` object's case inputs against the task's input type, as `load_dataset` does for a file.

    Returns the dataset itself when every input is already valid as it is, else a copy whose cases carry the
    validated inputs (e.g. a dict turned into the task's Pydantic model), so a task gets what its annotation says
    whether its cases came from a file or an object. The caller's dataset is never changed.

    Raises:
        DatasetError: A case's inputs do not validate; the message names the dataset, the case and the field.
    """
    if input_type is Any:
        return dataset
    adapter: TypeAdapter[Any] = TypeAdapter(input_type)
    cases = list(dataset.cases)
    changed = False
    for index, case in enumerate(cases):
        try:
            value = adapter.validate_python(case.inputs)
        except ValidationError as e:
            label = f'case {case.name!r} (#{index + 1})' if case.name else f'case #{index + 1}'
            problems: list[str] = []
            for err in e.errors()[:3]:
                field = '.'.join(str(p) for p in err['loc']) or '(top level)'
                problems.append(f'{label}, field inputs{"." + field if err["loc"] else ""}: {err["msg"]}')
            more = len(e.errors()) - 3
            raise DatasetError(
                f'{display_name}: {"; ".join(problems)}{f" (and {more} more)" if more > 0 else ""}'
            ) from None
        if value is not case.inputs:
            cases[index] = dataclasses.replace(case, inputs=value)
            changed = True
    return dataset.model_copy(update={'cases': cases}) if changed else dataset
