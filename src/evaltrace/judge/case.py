"""Judging a case: its status from the evaluators' results (pure). The message a reader sees is `judge.failure`'s."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic_evals import Case
from pydantic_evals.evaluators import EvaluationResult
from pydantic_evals.reporting import ReportCase, ReportCaseFailure

from ..results.case import CaseStatus, EvalValue
from ..safety.bounds import MAX_VALUE_CHARS_CEILING, bound_value, was_cut

__all__ = ('CaseJson', 'Judged', 'inputs_digest', 'inputs_hash', 'json_type_lost', 'jsonable', 'judge', 'truncate')

MAX_VALUE_CHARS = 400


def jsonable(value: Any, max_chars: int = MAX_VALUE_CHARS_CEILING) -> Any:
    """A JSON-compatible copy of any value (pydantic models, dataclasses...); unknown objects become their repr.

    Never raises, and never grows past about `max_chars` characters of JSON (see `safety.bounds.bound_value`): a value
    that cannot be serialised is kept as a safe representation with a marker.
    """
    return bound_value(value, max_chars)


_ADDRESS = re.compile(r' at 0x[0-9a-fA-F]+')


def _digest(as_json: Any) -> str:
    """A short digest of a JSON copy (see `jsonable`) that is the same in every process: the memory address in the
    repr an object with no serialiser is kept as (`<… object at 0x…>`) is left out."""
    canonical = _ADDRESS.sub('', json.dumps(as_json, sort_keys=True))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def inputs_hash(inputs_json: Any, expected_json: Any) -> str:
    """A digest of what defines a case, from the JSON copies of its inputs and expected output (see `jsonable`), so
    that a baseline can tell a case whose inputs changed."""
    return _digest([inputs_json, expected_json])


def inputs_digest(inputs_json: Any) -> str:
    """A digest of a case's inputs alone, from their JSON copy (see `jsonable`): its expected output may change and
    leave a stored output valid."""
    return _digest(inputs_json)


@dataclass(frozen=True)
class CaseJson:
    """A case's own values as JSON (see `jsonable`), made once per case, and the digests made from them."""

    inputs: Any
    expected_output: Any
    metadata: Any
    inputs_hash: str
    inputs_digest: str

    @classmethod
    def of(cls, case: Case[Any, Any, Any]) -> CaseJson:
        inputs, expected = jsonable(case.inputs), jsonable(case.expected_output)
        return cls(inputs, expected, jsonable(case.metadata), inputs_hash(inputs, expected), inputs_digest(inputs))


def json_type_lost(value: Any, as_json: Any) -> str | None:
    """The type of `value` when its JSON copy `as_json` (see `jsonable`) reads back as something else, else None."""
    if was_cut(as_json):
        # A copy cut at the bound is never equal to the value; its type is kept when it is the value's own (a str,
        # a list, a dict), as far as can be told without walking the whole value.
        if type(as_json) is type(value):
            return None
    else:
        try:
            if bool(as_json == value) or (_is_nan(value) and _is_nan(as_json)):  # NaN is no value's equal
                return None
        except Exception:  # an object whose == does not give a truth value (an array): not kept either
            pass
    kind = cast('type[Any]', type(value))  # pyright: ignore[reportUnknownArgumentType]
    return kind.__qualname__ if kind.__module__ == 'builtins' else f'{kind.__module__}.{kind.__qualname__}'


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f'{text[: limit - 20]}… ({len(text) - limit + 20} more chars)'


def _values(results: Mapping[str, EvaluationResult[Any]]) -> dict[str, EvalValue]:
    return {name: EvalValue(r.value, r.reason, r.source.name) for name, r in results.items()}


Judged = tuple[
    CaseStatus,
    list[str],
    dict[str, EvalValue],
    dict[str, EvalValue],
    dict[str, EvalValue],
    list[dict[str, str]],
    dict[str, str] | None,
]
"""A verdict: status, failures, assertions, scores, labels, evaluator failures, error."""


def judge(
    outcome: ReportCase[Any, Any, Any] | ReportCaseFailure[Any, Any, Any], min_scores: Mapping[str, float]
) -> Judged:
    """Decide a case's status from pydantic-evals' outcome.

    A task that raised is an `error`; so is an evaluator that raised. A False assertion, or a score below the
    suite's `min_scores` threshold, is a `failed` case. Labels never fail a case.
    """
    if isinstance(outcome, ReportCaseFailure):
        error = {
            'type': outcome.error_message.split(':', 1)[0],
            'message': outcome.error_message,
            'traceback': outcome.error_stacktrace,
        }
        return 'error', [f'task raised {outcome.error_message}'], {}, {}, {}, [], error
    assertions = _values(outcome.assertions)
    scores = _values(outcome.scores)
    labels = _values(outcome.labels)
    failures: list[str] = []
    for name, ev in assertions.items():
        if not ev.value:
            failures.append(f'assertion {name} is False' + (f': {ev.reason}' if ev.reason else ''))
    for name, threshold in min_scores.items():
        ev = scores.get(name)
        if ev is None:
            failures.append(f'score {name} is missing (threshold {threshold})')
        elif float(ev.value) < threshold:
            failures.append(
                f'score {name} = {float(ev.value):.3g} is below {threshold}' + (f': {ev.reason}' if ev.reason else '')
            )
    evaluator_failures = [
        {'name': f.name, 'error_message': f.error_message, 'traceback': f.error_stacktrace}
        for f in outcome.evaluator_failures
    ]
    for f in evaluator_failures:
        failures.append(f'evaluator {f["name"]} raised {f["error_message"]}')
    status: CaseStatus = 'error' if evaluator_failures else 'failed' if failures else 'passed'
    error = None
    if evaluator_failures:
        first = evaluator_failures[0]
        error = {
            'type': first['error_message'].split(':', 1)[0],
            'message': first['error_message'],
            'traceback': first['traceback'],
        }
    return status, failures, assertions, scores, labels, evaluator_failures, error
