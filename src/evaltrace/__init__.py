"""evaltrace: run Pydantic Evals datasets with pytest, one item and one trace per case, gated for CI.

```python
import evaltrace

@evaltrace.suite('datasets/triage.yaml', gate=evaltrace.Gate(min_pass_rate=0.8))
async def test_triage(inputs: Ticket, support_deps: Deps) -> Triage:
    return (await triage_agent.run(inputs.message, deps=support_deps)).output
```

The names are imported lazily: the pytest plugin imports this package, and a plain `pytest tests/` should not pay
for pydantic-evals and logfire.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .collect.suite import SuiteSpec, suite
    from .judge.gates import Gate
    from .results.case import CaseResult

__all__ = ('CaseResult', 'Gate', 'SuiteSpec', 'suite')

_LAZY = {
    'suite': '.collect.suite',
    'SuiteSpec': '.collect.suite',
    'Gate': '.judge.gates',
    'CaseResult': '.results.case',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(import_module(module, __name__), name)
