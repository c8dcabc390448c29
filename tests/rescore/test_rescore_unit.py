"""Re-scoring's pure parts: the digests that tell a stored output's inputs, and what JSON keeps of an output."""

from __future__ import annotations

import subprocess
import sys

from evaltrace.judge.case import inputs_digest, inputs_hash, json_type_lost, jsonable
from evaltrace.safety.bounds import bound_value

_DIGESTS = """
from evaltrace.judge.case import CaseJson
from pydantic_evals import Case
inputs = {'tags': frozenset({'alpha', 'beta', 'gamma', 'delta', 'epsilon'}), 'more': [{1.5, 'x', 'y', None}]}
values = CaseJson.of(Case(inputs=inputs, expected_output={'a', 'b', 'c', 'd'}))
print(values.inputs_digest, values.inputs_hash)
"""


def test_digests_do_not_depend_on_the_process_string_hash_seed() -> None:
    seen = {
        subprocess.run(
            [sys.executable, '-c', _DIGESTS],
            env={'PYTHONHASHSEED': str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(seen) == 1, seen


class _Opaque:
    """No serialiser: kept as its repr, which names its memory address."""


def test_an_object_kept_as_its_repr_digests_without_its_address() -> None:
    a, b = _Opaque(), _Opaque()
    assert ' at 0x' in str(bound_value(a))
    assert inputs_digest(jsonable(a)) == inputs_digest(jsonable(b))
    assert inputs_hash(jsonable([a]), 1) == inputs_hash(jsonable([b]), 1)
    assert inputs_digest(jsonable(a)) != inputs_digest('other')


def test_a_set_is_kept_in_a_canonical_order() -> None:
    assert bound_value({'b', 'a', 'c'}) == ['a', 'b', 'c']
    assert bound_value(frozenset({2, 'x', 1})) == ['x', 1, 2]  # by JSON text
    assert bound_value({'s': {('b', 1), ('a', 2)}}) == {'s': [['a', 2], ['b', 1]]}


def test_a_type_is_lost_only_when_json_reads_back_as_something_else() -> None:
    long = 'x' * 1_100_000  # over the most any value keeps: its JSON copy is cut, not of another type
    assert json_type_lost(long, jsonable(long)) is None
    nan = float('nan')
    assert json_type_lost(nan, jsonable(nan)) is None
    assert json_type_lost([nan, 1.0], jsonable([nan, 1.0])) is None
    assert json_type_lost((1, 2), jsonable((1, 2))) == 'tuple'
    assert json_type_lost(_Opaque(), jsonable(_Opaque())) == f'{__name__}._Opaque'
    assert json_type_lost({'a': [1, 'b']}, jsonable({'a': [1, 'b']})) is None
    cut = ('x' * 1_100_000,)
    assert json_type_lost(cut, jsonable(cut)) == 'tuple'  # cut, and of another type
