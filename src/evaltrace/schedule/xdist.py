"""pytest-xdist scheduling: all cases of a suite go to one worker, which runs them concurrently as one batch.

Applied only for xdist's default `--dist load`: items are grouped by function (the node id without its `[...]`
parameter part), like `--dist loadscope` one level finer. Other `--dist` modes are respected; under modes that may
split a suite across workers, each worker runs its cases one batch per item instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..names import DIST_KEY, EXPECTED_KEY

__all__ = ('EXPECTED_KEY', 'batch_mode_for_worker', 'make_scheduler', 'scope_of')

GROUPING_MODES = ('load', 'loadscope', 'loadfile', 'each')

"""The eval cases a worker collected, sent to the controller: on the worker's first setup report (so it arrives even
if the worker then dies, whose `workeroutput` never does) and in its `workeroutput`."""


def scope_of(nodeid: str) -> str:
    """The scheduling scope of a node id: the function, without its parameter part."""
    return nodeid.split('[', 1)[0]


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption('dist', None) != 'load':
        return None
    from xdist.scheduler import LoadScopeScheduling  # pyright: ignore[reportMissingTypeStubs]

    class SuiteScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return SuiteScheduling(config, log)


def batch_mode_for_worker(config: pytest.Config) -> bool:
    """Whether a worker may run a suite's selected cases as one batch (the suite is known to be all on it).

    The mode is the controller's, sent in `workerinput`: xdist sets each worker's own `--dist` to `no`.
    """
    workerinput: dict[str, Any] = getattr(config, 'workerinput', {})
    return workerinput.get(DIST_KEY, config.getoption('dist', 'no')) in GROUPING_MODES
