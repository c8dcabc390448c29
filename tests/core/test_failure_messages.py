"""Failure messages a reader can use: the case's inputs, a traceback trimmed to the user's own frames, and pytest's
`--tb` styles (`long` and `--fulltrace` keep every frame; `short`, `line` and `no` shorten the message)."""

from __future__ import annotations

import pytest

from tests.support.eval_project import EvalProject

# A tool that raises inside a pydantic-ai agent run: the traceback passes through ~60 frames of pydantic-ai,
# pydantic-graph, anyio, pydantic-evals and evaltrace between the user's suite function and the user's tool.
TOOL_ERROR = """
import evaltrace
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_evals import Case, Dataset


def respond(messages, info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart('lookup', {'order': 'ORD-1'})])


agent = Agent(FunctionModel(respond))


def fetch_order(order: str) -> str:
    raise KeyError(f'no order {order}')


@agent.tool_plain
def lookup(order: str) -> str:
    return fetch_order(order)


CASES = [
    Case(name='tool_err', inputs='where is ORD-1? ' + 'x' * 2000),
    Case(name='fine', inputs='hello', expected_output='hello'),
]


@evaltrace.suite(Dataset(name='orders', cases=CASES))
async def test_orders(question: str) -> str:
    if question == 'hello':
        return question
    result = await agent.run(question)
    return result.output
"""


def _failures(result: pytest.RunResult) -> list[str]:
    """The lines of pytest's FAILURES section (empty when there is none)."""
    lines = result.stdout.lines
    try:
        start = next(i for i, line in enumerate(lines) if 'FAILURES' in line and line.startswith('='))
    except StopIteration:
        return []
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith('='))
    return lines[start + 1 : end]


def _run(project: EvalProject, *args: str) -> pytest.RunResult:
    project.write('evals/test_orders.py', TOOL_ERROR)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-p', 'no:randomly', *args)
    result.assert_outcomes(passed=1, failed=1)
    return result


def test_a_tool_error_shows_the_inputs_and_only_the_users_frames(project: EvalProject) -> None:
    failures = _failures(_run(project))
    text = '\n'.join(failures)
    assert failures[1] == "case tool_err error: task raised KeyError: 'no order ORD-1'"
    # The inputs, bounded: 2,000 characters of them would bury the rest.
    inputs = next(line for line in failures if line.startswith('  inputs:'))
    assert inputs.startswith('  inputs:   "where is ORD-1? xxx') and 'more chars)' in inputs
    assert len(inputs) < 500
    # The user's frames, outermost first, and the exception line; no library frame.
    frames = [line.strip() for line in failures if line.strip().startswith('File ')]
    assert [f.rsplit(' in ', 1)[1] for f in frames] == ['test_orders', 'lookup', 'fetch_order']
    assert all('evals/test_orders.py' in f for f in frames)
    assert "raise KeyError(f'no order {order}')" in text
    assert failures[-1] == "KeyError: 'no order ORD-1'"
    shown = '\n'.join(line for line in failures if 'hidden' not in line and 'evaltrace show' not in line)
    for library in ('site-packages', 'pydantic_ai', 'pydantic_evals', 'evaltrace/run/case.py', 'asyncio', 'anyio'):
        assert library not in shown, library
    assert any('frames hidden' in line and 'pydantic_ai' in line and '--tb=long' in line for line in failures)
    assert len(failures) < 30, text  # it was ~200 lines


@pytest.mark.parametrize('option', ['--tb=long', '--fulltrace'])
def test_tb_long_and_fulltrace_keep_every_frame(project: EvalProject, option: str) -> None:
    failures = _failures(_run(project, option))
    text = '\n'.join(failures)
    assert 'pydantic_ai/_tool_execution.py' in text and 'evaltrace/run/case.py' in text
    assert 'frames hidden' not in text
    assert any(line.lstrip('E ').startswith('inputs:') for line in failures)  # --fulltrace prefixes with `E`
    assert len(failures) > 100


def test_tb_short_keeps_why_inputs_and_where_only(project: EvalProject) -> None:
    default = _failures(_run(project))
    short = _failures(_run(project, '--tb=short'))
    text = '\n'.join(short)
    assert short[1] == "case tool_err error: task raised KeyError: 'no order ORD-1'"
    assert any(line.startswith('  inputs:') for line in short)
    assert any(line.startswith('  trace: ') for line in short)
    assert 'task usage' not in text and 'frames hidden' not in text
    frames = [line.strip() for line in short if line.strip().startswith('File ')]
    assert [f.rsplit(' in ', 1)[1] for f in frames] == ['test_orders', 'lookup', 'fetch_order']
    assert "raise KeyError(f'no order {order}')" not in text  # frame locations only, no source lines
    assert short[-1] == "KeyError: 'no order ORD-1'"
    assert len(short) < len(default) - 5


@pytest.mark.parametrize('workers', [[], ['-n', '2']], ids=['serial', 'xdist'])
def test_tb_line_is_one_line_naming_the_suite_and_why(project: EvalProject, workers: list[str]) -> None:
    # xdist adds a line naming the worker (`[gw0] linux -- Python …`) above each failure.
    failures = [line for line in _failures(_run(project, '--tb=line', *workers)) if not line.startswith('[gw')]
    assert len(failures) == 1, failures
    line = failures[0]
    assert line.endswith("evals/test_orders.py:30: case tool_err error: task raised KeyError: 'no order ORD-1'"), line
    assert 'evaltrace/session/' not in line


def test_tb_no_shows_no_failure_message(project: EvalProject) -> None:
    result = _run(project, '--tb=no')
    assert _failures(result) == []
    assert 'task raised' not in result.stdout.str().split('evaltrace summary')[0]


# ---- trimming, pure ----

ROOTS = {'/venv/site-packages/': None, '/py/lib/': None, '/src/evaltrace/': 'evaltrace'}

CHAINED = """Traceback (most recent call last):
  File "/venv/site-packages/pydantic_evals/dataset.py", line 1, in run
    await task()
  File "/src/evaltrace/run/case.py", line 75, in async_task
    return await fn(inputs)
  File "/me/evals/test_x.py", line 9, in test_x
    return helper()
    ^^^^^^^^
  File "/py/lib/asyncio/tasks.py", line 3, in wait
    raise ValueError('inner')
ValueError: inner

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/venv/site-packages/anyio/to_thread.py", line 5, in run_sync
    return fn()
  File "<frozen importlib._bootstrap>", line 1, in _call
RuntimeError: outer
"""


def test_library_of_names_the_library_or_none_for_the_users_code() -> None:
    from evaltrace.judge.failure import library_of

    roots = {**ROOTS, '/py/lib/python3/': None, '/py/lib/python3/site-packages/': None}
    assert library_of('/me/evals/test_x.py', roots) is None
    assert library_of('/venv/site-packages/pydantic_ai/run.py', roots) == 'pydantic_ai'
    assert library_of('/py/lib/python3/asyncio/tasks.py', roots) == 'asyncio'
    assert library_of('/py/lib/python3/contextlib.py', roots) == 'contextlib'
    assert library_of('/py/lib/python3/site-packages/anyio/x.py', roots) == 'anyio'  # the longest root wins
    assert library_of('/src/evaltrace/run/case.py', roots) == 'evaltrace'
    assert library_of('<frozen importlib._bootstrap>', roots) == 'python'


def test_trim_keeps_the_users_frames_the_exception_lines_and_the_chain() -> None:
    from functools import partial

    from evaltrace.judge.failure import library_of, trim_traceback

    trimmed = trim_traceback(CHAINED, partial(library_of, roots=ROOTS)).splitlines()
    assert trimmed == [
        'Traceback (most recent call last):',
        '  … 2 frames hidden (pydantic_evals, evaltrace): --tb=long shows them',
        '  File "/me/evals/test_x.py", line 9, in test_x',
        '    return helper()',
        '    ^^^^^^^^',
        '  … 1 frame hidden (asyncio): --tb=long shows them',
        'ValueError: inner',
        '',
        'The above exception was the direct cause of the following exception:',
        '',
        'Traceback (most recent call last):',
        # No frame of the user's: the innermost is kept, so the reader still sees where it was raised.
        '  … 1 frame hidden (anyio): --tb=long shows them',
        '  File "<frozen importlib._bootstrap>", line 1, in _call',
        'RuntimeError: outer',
    ]
    short = trim_traceback(CHAINED, partial(library_of, roots=ROOTS), locations_only=True).splitlines()
    assert [line for line in short if 'File' in line or 'hidden' in line] == [
        '  File "/me/evals/test_x.py", line 9, in test_x',
        '  File "<frozen importlib._bootstrap>", line 1, in _call',
    ]


def test_trim_reads_an_exception_groups_indented_frames() -> None:
    from functools import partial

    from evaltrace.judge.failure import library_of, trim_traceback

    group = '\n'.join(
        [
            '  + Exception Group Traceback (most recent call last):',
            '  |   File "/venv/site-packages/anyio/_core.py", line 1, in run',
            '  |     await x',
            '  | ExceptionGroup: errors (1 sub-exception)',
            '  +-+---------------- 1 ----------------',
            '    | Traceback (most recent call last):',
            '    |   File "/me/tools.py", line 4, in lookup',
            '    |     raise KeyError(order)',
            '    | KeyError: 1',
            '    +------------------------------------',
        ]
    )
    trimmed = trim_traceback(group, partial(library_of, roots=ROOTS)).splitlines()
    assert '  |   File "/me/tools.py", line 4, in lookup' not in trimmed  # its prefix is `    | `
    assert '    |   File "/me/tools.py", line 4, in lookup' in trimmed
    assert '    |     raise KeyError(order)' in trimmed
    assert '  |   File "/venv/site-packages/anyio/_core.py", line 1, in run' in trimmed  # the only frame: kept
    assert len(trimmed) == len(group.splitlines())
