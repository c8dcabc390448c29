"""Sharding: `--evaltrace-shard=i/n` runs a deterministic, count-balanced slice of the selected eval cases.

Cases are grouped by logical case (a case with all its repeats stays on one shard, so k-of-n holds within a shard),
the groups are sorted by name, and each goes to the shard with the fewest cases so far. A suite run judged on all its
cases at once (its dataset's report evaluators, its `report_check`, its gate's `min_analysis`) is one group: split,
each shard would judge only its part, and the merge could not check it. Every shard computes the same
plan from the same selection, so the shards together run every selected case exactly once. Items that are not eval
cases (plain tests, skipped suites, dataset errors) are left to every shard.

Each shard records the plan's size and digest, so `evaltrace merge` can tell shards planned from different selections.

Re-scoring a run that was one shard (`evaltrace rescore`) keeps the cases that run ran and leaves out the others,
which another shard ran (`keep_stored_shard`); the re-scoring run is then that shard, of its own selection.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from ..names import SHARD_PLAN_KEY as WORKEROUTPUT_KEY

__all__ = (
    'SHARD_PLAN_KEY',
    'ShardPlan',
    'apply_shard',
    'assign_shards',
    'keep_stored_shard',
    'plan_digest',
    'record_worker_plan',
)


@dataclass(frozen=True)
class ShardPlan:
    """What a shard knows about the whole run: its place, and the size and digest of the full selection."""

    index: int
    count: int
    total_cases: int
    plan_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            'index': self.index,
            'count': self.count,
            'total_cases': self.total_cases,
            'plan_digest': self.plan_digest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardPlan | None:
        try:
            return cls(int(data['index']), int(data['count']), int(data['total_cases']), str(data['plan_digest']))
        except (KeyError, TypeError, ValueError):
            return None


SHARD_PLAN_KEY = pytest.StashKey[ShardPlan]()


def plan_digest(nodeids: Sequence[str]) -> str:
    """A short digest of the full selection of eval cases, independent of collection order."""
    return hashlib.sha256('\n'.join(sorted(nodeids)).encode()).hexdigest()[:16]


def assign_shards(groups: Mapping[str, int], count: int) -> dict[str, int]:
    """Assign groups (name -> number of items) to shards 1..count, balanced by item count (pure, deterministic).

    Larger groups are placed first (then by name), each on the least loaded shard (the lowest index on a tie).
    """
    loads = [0] * count
    out: dict[str, int] = {}
    for name in sorted(groups, key=lambda g: (-groups[g], g)):
        target = min(range(count), key=lambda i: (loads[i], i))
        loads[target] += groups[name]
        out[name] = target + 1
    return out


def _group_of(item: pytest.Item) -> str | None:
    from .items import CaseParam, case_param, suite_run_id

    param = case_param(item)
    if not isinstance(param, CaseParam):
        return None
    suite = param.suite
    gate = suite.spec.gate
    if suite.dataset.report_evaluators or suite.spec.report_check is not None or (gate and gate.min_analysis):
        return suite_run_id(item, param)
    return f'{suite.suite_id}[{param.case_name}]'


def apply_shard(config: pytest.Config, items: list[pytest.Item], shard: tuple[int, int]) -> ShardPlan:
    """Keep this shard's eval cases in `items` (in place), deselect the others, and record the plan."""
    index, count = shard
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        group = _group_of(item)
        if group is not None:
            groups.setdefault(group, []).append(item)
    nodeids = [it.nodeid for members in groups.values() for it in members]
    plan = ShardPlan(index, count, len(nodeids), plan_digest(nodeids))
    if count > 1:
        assignment = assign_shards({g: len(m) for g, m in groups.items()}, count)
        drop = {id(it) for g, members in groups.items() if assignment[g] != index for it in members}
        if drop:
            config.hook.pytest_deselected(items=[it for it in items if id(it) in drop])
            items[:] = [it for it in items if id(it) not in drop]
    _record(config, plan)
    return plan


def keep_stored_shard(
    config: pytest.Config, items: list[pytest.Item], plan: ShardPlan, index: int, count: int, ran: Collection[str]
) -> None:
    """Re-scoring a run that was shard `index`/`count`: keep (in place) the eval cases it `ran`, deselect the others,
    which another shard ran, and make this run that shard of `plan`'s selection, unless it is a shard of its own.

    The report then says how many were left out: the plan's cases it does not expect (see `run.rescore`).
    """
    drop = {id(it) for it in items if _group_of(it) is not None and it.nodeid not in ran}
    if drop:
        config.hook.pytest_deselected(items=[it for it in items if id(it) in drop])
        items[:] = [it for it in items if id(it) not in drop]
    if plan.count == 1:
        # Its report then says it is a part (not recorded in the history as a whole run), as the stored run's did.
        _record(config, dataclasses.replace(plan, index=index, count=count))


def _record(config: pytest.Config, plan: ShardPlan) -> None:
    config.stash[SHARD_PLAN_KEY] = plan
    workeroutput: dict[str, Any] | None = getattr(config, 'workeroutput', None)
    if workeroutput is not None:
        # Under xdist the controller does not collect; the plan travels back with the worker's output.
        workeroutput[WORKEROUTPUT_KEY] = plan.to_dict()


def record_worker_plan(config: pytest.Config, workeroutput: Mapping[str, Any]) -> None:
    """In the xdist controller: keep the shard plan a worker sent back (call from `pytest_testnodedown`)."""
    data: Any = workeroutput.get(WORKEROUTPUT_KEY)
    plan = ShardPlan.from_dict(data) if isinstance(data, dict) else None  # pyright: ignore[reportUnknownArgumentType]
    if plan is not None and SHARD_PLAN_KEY not in config.stash:
        config.stash[SHARD_PLAN_KEY] = plan
