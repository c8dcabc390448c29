"""Checking that JSON read back from disk has the shape evaltrace wrote, against the report's own JSON Schema.

A report is read back by `evaltrace report`, `baseline save`, `merge` and `show`, and may have been edited, cut or
written by something else. Valid JSON of the wrong shape must be a one-line error naming the field, not a traceback
from deep inside whatever first touched it. The schema (`report.schema.json`, shipped with the package) is the one
definition of that shape; this checks the part of JSON Schema it uses (`type`, `required`, `properties`,
`additionalProperties`, `items`, `enum`, `const`, `minimum`, `$ref` within the file), without a dependency.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, cast

__all__ = ('report_shape_problem', 'shape_problem')

_TYPES: dict[str, tuple[type, ...]] = {
    'object': (dict,),
    'array': (list,),
    'string': (str,),
    'integer': (int,),
    'number': (int, float),
    'boolean': (bool,),
    'null': (type(None),),
}


@functools.cache
def _report_schema() -> dict[str, Any]:
    text = resources.files('evaltrace.report').joinpath('report.schema.json').read_text(encoding='utf-8')
    return cast(dict[str, Any], json.loads(text))


def _is(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ('integer', 'number'):
        return False  # JSON's true is no number, though Python's bool is an int
    return isinstance(value, _TYPES.get(type_name, (object,)))


_ARTICLES = {
    'object': 'an object',
    'array': 'a list',
    'string': 'a string',
    'integer': 'a whole number',
    'number': 'a number',
    'boolean': 'true or false',
    'null': 'null',
}


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else f'{text[:37]}...'


def shape_problem(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], where: str = '') -> str | None:
    """The first place where `value` breaks `schema` (`where`: its JSON path, e.g. `cases[3].status`), else None."""
    if '$ref' in schema:
        ref = str(schema['$ref'])
        target: Any = root
        for part in ref.removeprefix('#/').split('/'):
            target = target[part]
        return shape_problem(value, cast(Mapping[str, Any], target), root, where)
    name = where or 'the top level'
    types = schema.get('type')
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(cast(list[str], types))
        if not any(_is(value, t) for t in allowed):
            return f'{name} must be {" or ".join(_ARTICLES.get(t, t) for t in allowed)}, got {_describe(value)}'
    if 'const' in schema and value != schema['const']:
        return f'{name} must be {_describe(schema["const"])}, got {_describe(value)}'
    if 'enum' in schema and value not in schema['enum']:
        return f'{name} must be one of {", ".join(map(str, schema["enum"]))}, got {_describe(value)}'
    if 'minimum' in schema and _is(value, 'number') and value < schema['minimum']:
        return f'{name} must be at least {schema["minimum"]}, got {_describe(value)}'
    if isinstance(value, dict):
        obj = cast(dict[str, Any], value)
        for key in schema.get('required', ()):
            if key not in obj:
                return f'{name} has no "{key}"'
        properties: Mapping[str, Any] = schema.get('properties', {})
        extra: Any = schema.get('additionalProperties', True)
        for key, item in obj.items():
            sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
            path = f'{where}.{key}' if where else key
            if sub is not None:
                problem = shape_problem(item, cast(Mapping[str, Any], sub), root, path)
                if problem:
                    return problem
            elif extra is False:
                return f'{path} is not expected here'
    if isinstance(value, list) and isinstance(schema.get('items'), Mapping):
        for i, item in enumerate(cast(list[Any], value)):
            problem = shape_problem(item, cast(Mapping[str, Any], schema['items']), root, f'{where}[{i}]')
            if problem:
                return problem
    return None


def report_shape_problem(data: Any) -> str | None:
    """Where a report read back breaks `report.schema.json`, in one line; None when it has the expected shape."""
    schema = _report_schema()
    return shape_problem(data, schema, schema)
