"""Harness overhead: `pytest` through evaltrace against a plain `Dataset.evaluate`, same dataset and task, one run.

Two workloads: a trivial task over 1,000 cases, and 200 cases with a simulated 50 ms model latency. Three commands
run in fresh subprocesses (interpreter start and imports included), alternating, `--rounds` times:

- plain: a script calling `Dataset.evaluate` once, as pydantic-evals users do without a harness;
- pytest floor: the same single `Dataset.evaluate`, called from pytest with one trivial item per case (evaltrace
  off). What pytest itself costs (start-up, collection, the per-item protocol), below any harness;
- evaltrace: `pytest evals/` with the suite bound to the dataset (defaults: per-case traces, report, HTML, store).

The medians are printed, with evaltrace's ratio and overhead per case against plain and against the floor. Those
are taken round by round (each run against the plain and floor runs of its own round, then the median), so that the
machine's drift over minutes moves both sides of a ratio alike. Then each command's median count of voluntary context switches (a thread that gave up the processor to wait, most often
for the interpreter's lock: what a harness thread that contends with pytest's costs beyond its own work).
`--compare PYTHON` adds a fourth command, the same `pytest evals/` under another interpreter (for example the venv
of an older checkout of evaltrace), timed in the same alternation, so that two versions are compared side by side.
`--variant 'NAME=ARGS'` (repeatable) adds `pytest evals/ ARGS` to the alternation, for example
`--variant 'no html=--evaltrace-html=off'`: what one output costs, measured beside the default.

The commands run with bytecode caching on, Python's default, even where the environment turns it off
(`PYTHONDONTWRITEBYTECODE`): otherwise pytest re-parses and rewrites every plugin module on every run, which a user
pays once. One unmeasured round first fills the caches.

    uv run python bench/bench_overhead.py [--rounds 3] [--compare ../old/.venv/bin/python] [--workload '50ms latency x200']
        [--variant 'no html=--evaltrace-html=off']
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import cast

WORKLOADS = {
    'trivial x1000': {'cases': 1000, 'latency': 0.0},
    '50ms latency x200': {'cases': 200, 'latency': 0.05},
}
CONCURRENCY = 20

TASK = """
import asyncio

LATENCY = {latency}

async def task(inputs: str) -> str:
    if LATENCY:
        await asyncio.sleep(LATENCY)
    return inputs.upper()
"""

PLAIN = """
import logfire
from pydantic_evals import Dataset
from task_module import task

logfire.configure(send_to_logfire='if-token-present', console=False)
logfire.instrument_pydantic_ai()
dataset = Dataset[str, str, None].from_file('datasets/bench.yaml')
report = dataset.evaluate_sync(task, max_concurrency={concurrency}, progress=False)
assert len(report.cases) == {n}, len(report.cases)
"""

FLOOR = """
import logfire
import pytest
from pydantic_evals import Dataset
from task_module import task

logfire.configure(send_to_logfire='if-token-present', console=False)
logfire.instrument_pydantic_ai()
dataset = Dataset[str, str, None].from_file('datasets/bench.yaml')
results = {{}}


@pytest.mark.parametrize('name', [case.name for case in dataset.cases])
def test_floor(name: str) -> None:
    if not results:
        report = dataset.evaluate_sync(task, max_concurrency={concurrency}, progress=False)
        results.update((case.name, case) for case in report.cases)
    assert all(a.value for a in results[name].assertions.values())
"""

SUITE = """
import evaltrace
from task_module import task

@evaltrace.suite('datasets/bench.yaml', max_concurrency={concurrency})
async def test_bench(inputs: str) -> str:
    return await task(inputs)
"""


def _project(root: Path, n: int, latency: float) -> None:
    (root / 'datasets').mkdir()
    (root / 'evals').mkdir()
    cases = [{'name': f'case{i}', 'inputs': f'word{i}', 'expected_output': f'WORD{i}'} for i in range(n)]
    (root / 'datasets/bench.yaml').write_text(json.dumps({'cases': cases, 'evaluators': ['EqualsExpected']}))
    (root / 'task_module.py').write_text(TASK.format(latency=latency))
    (root / 'plain.py').write_text(textwrap.dedent(PLAIN.format(concurrency=CONCURRENCY, n=n)))
    (root / 'evals/test_bench.py').write_text(SUITE.format(concurrency=CONCURRENCY))
    (root / 'floor').mkdir()
    (root / 'floor/test_floor.py').write_text(FLOOR.format(concurrency=CONCURRENCY))
    (root / 'pyproject.toml').write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')


def _time(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """The command's wall time, and its voluntary context switches (all its threads, from the kernel's count)."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}
    switches = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nvcsw
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - t0
    switches = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nvcsw - switches
    if proc.returncode != 0:
        sys.exit(
            f'benchmark command failed ({proc.returncode}): {" ".join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}'
        )
    return elapsed, switches


def _over(runs: list[float], base: list[float], n: int) -> tuple[float, float]:
    """`runs` against `base`, round by round: the median ratio, and the median time over it in ms per case."""
    ratio = statistics.median(a / b for a, b in zip(runs, base, strict=True))
    extra = statistics.median(a - b for a, b in zip(runs, base, strict=True))
    return ratio, extra / n * 1000


def _column(times: dict[str, list[float]], name: str, base: str, n: int) -> str:
    ratio, per_case = _over(times[name], times[base], n)
    return f'{ratio:>8.2f}x {per_case:>6.2f} ms'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--compare', metavar='PYTHON', help='also time `pytest evals/` under this interpreter')
    parser.add_argument('--workload', choices=list(WORKLOADS), action='append', help='only these workloads')
    parser.add_argument(
        '--variant', action='append', default=[], metavar='NAME=ARGS', help='also time `pytest evals/ ARGS`'
    )
    args = parser.parse_args()
    variants: dict[str, list[str]] = {}
    for spec in cast('list[str]', args.variant):
        name, sep, extra = spec.partition('=')
        if not sep or not name.strip():
            parser.error(f'--variant {spec!r}: expected NAME=ARGS, e.g. "no html=--evaltrace-html=off"')
        variants[name.strip()] = shlex.split(extra)
    pytest_args = ['-m', 'pytest', '-q', '-p', 'no:cacheprovider']
    commands = {
        'plain': [sys.executable, 'plain.py'],
        'floor': [sys.executable, *pytest_args, 'floor', '-p', 'no:evaltrace'],
        'evaltrace': [sys.executable, *pytest_args, 'evals'],
    }
    if args.compare:
        commands['compare'] = [args.compare, *pytest_args, 'evals']
        print(f'compare: {args.compare}')
    for name, extra in variants.items():
        commands[f'variant {name}'] = [sys.executable, *pytest_args, 'evals', *extra]
    header = (
        f'{"workload":<20} {"plain s":>8} {"floor s":>8} {"evaltrace s":>12} '
        f'{"vs plain":>9} {"per case":>9} {"vs floor":>9} {"per case":>9}'
    )
    print(header + (f' {"compare s":>10} {"vs floor":>9} {"per case":>9}' if args.compare else ''))
    for label, w in WORKLOADS.items():
        if args.workload and label not in args.workload:
            continue
        n = int(w['cases'])
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            _project(root, n, float(w['latency']))
            for cmd in commands.values():  # unmeasured: fills the bytecode caches
                _time(cmd, root)
            times: dict[str, list[float]] = {name: [] for name in commands}
            switches: dict[str, list[int]] = {name: [] for name in commands}
            for _ in range(args.rounds):
                for name, cmd in commands.items():
                    elapsed, switched = _time(cmd, root)
                    times[name].append(elapsed)
                    switches[name].append(switched)

            p, f, h = (statistics.median(times[name]) for name in ('plain', 'floor', 'evaltrace'))
            line = (
                f'{label:<20} {p:>8.2f} {f:>8.2f} {h:>12.2f} '
                f'{_column(times, "evaltrace", "plain", n)} {_column(times, "evaltrace", "floor", n)}'
            )
            if args.compare:
                line += f' {statistics.median(times["compare"]):>10.2f} {_column(times, "compare", "floor", n)}'
            print(line)
            for name in variants:
                runs = times[f'variant {name}']
                ratio, per_case = _over(runs, times['floor'], n)
                print(
                    f'  variant {name!r}: {statistics.median(runs):.2f} s, {ratio:.2f}x floor, '
                    f'{per_case:.2f} ms per case over it'
                )
            print(
                '  voluntary context switches: '
                + ', '.join(f'{name} {statistics.median(counts):.0f}' for name, counts in switches.items())
            )


if __name__ == '__main__':
    main()
