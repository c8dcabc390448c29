"""Several suites with heavy-tailed latency: `pytest evals/` through evaltrace against `asyncio.gather` over plain
`Dataset.evaluate` calls, same datasets and tasks, measured side by side in one run.

Each of K suites has N cases: one slow case (2 s by default) and N - 1 quick ones (0.2 s), as model latency is
heavy-tailed. A harness that runs one suite after another pays the slow case K times; one that overlaps suites pays
it about once. Two commands run in fresh subprocesses, alternating, `--rounds` times:

- gather: one script that awaits `asyncio.gather` over the K `Dataset.evaluate` calls (pydantic-evals defaults);
- floor: the same `asyncio.gather`, in one plain pytest test (evaltrace off): what pytest and the imports cost;
- evaltrace: `pytest evals/` with one suite function per dataset (evaltrace's defaults).

Printed, as medians with evaltrace's ratios to gather and to the floor: the time from the first case's start to the last case's end
(each task logs both); the time each reports (gather: around the `gather` call; evaltrace: pytest's `in N.NNs`,
which includes collection, and so the imports of pydantic-evals and logfire that the gather script makes before
its clock starts); and the whole process (interpreter start and imports included).

    uv run python bench/bench_suites.py [--suites 4] [--cases 16] [--slow 2.0] [--quick 0.2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = """
import asyncio, time
from pathlib import Path

async def task(inputs: float) -> float:
    start = time.time()
    await asyncio.sleep(inputs)
    with Path('spans.log').open('a') as f:
        f.write(f'{start} {time.time()}\\n')
    return inputs
"""

GATHER = """
import asyncio, time
import logfire
from pydantic_evals import Dataset
from task_module import task

logfire.configure(send_to_logfire='if-token-present', console=False)
logfire.instrument_pydantic_ai()
datasets = [Dataset[float, float, None].from_file(f'datasets/suite{{i}}.yaml') for i in range({k})]

async def main() -> None:
    reports = await asyncio.gather(*(d.evaluate(task, progress=False) for d in datasets))
    assert sum(len(r.cases) for r in reports) == {total}

t0 = time.perf_counter()
asyncio.run(main())
print(f'cases took {{time.perf_counter() - t0:.3f}}s')
"""

FLOOR = """
import asyncio
import logfire
from pydantic_evals import Dataset
from task_module import task

logfire.configure(send_to_logfire='if-token-present', console=False)
logfire.instrument_pydantic_ai()
datasets = [Dataset[float, float, None].from_file(f'datasets/suite{{i}}.yaml') for i in range({k})]


def test_floor() -> None:
    async def main() -> None:
        await asyncio.gather(*(d.evaluate(task, progress=False) for d in datasets))

    asyncio.run(main())
"""

SUITE = """
import evaltrace
from task_module import task

@evaltrace.suite('datasets/suite{i}.yaml')
async def test_suite{i}(inputs: float) -> float:
    return await task(inputs)
"""


ROWS = {
    'cases': 'first case start to last case end',
    'reported': 'as reported (gather; pytest "in")',
    'process': 'whole process',
}


def _project(root: Path, k: int, n: int, slow: float, quick: float) -> None:
    (root / 'datasets').mkdir()
    (root / 'evals').mkdir()
    for i in range(k):
        cases = [{'name': f'case{j}', 'inputs': slow if j == 0 else quick} for j in range(n)]
        (root / f'datasets/suite{i}.yaml').write_text(json.dumps({'cases': cases}))
        (root / f'evals/test_suite{i}.py').write_text(SUITE.format(i=i))
    (root / 'task_module.py').write_text(TASK)
    (root / 'gather.py').write_text(GATHER.format(k=k, total=k * n))
    (root / 'floor').mkdir()
    (root / 'floor/test_floor.py').write_text(FLOOR.format(k=k))
    (root / 'pyproject.toml').write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')


def _run(cmd: list[str], cwd: Path, pattern: str) -> tuple[float, float, float]:
    """(first case start to last case end; the time the command reports; the whole process's time)."""
    log = cwd / 'spans.log'
    log.unlink(missing_ok=True)
    t0 = time.perf_counter()
    # Bytecode caching on, Python's default, even where the environment turns it off (see bench_overhead.py).
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f'benchmark command failed ({proc.returncode}): {" ".join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr}')
    found = re.findall(pattern, proc.stdout)
    if not found:
        sys.exit(f'no timing in the output of {" ".join(cmd)}:\n{proc.stdout[-2000:]}')
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    return max(end for _, end in spans) - min(start for start, _ in spans), float(found[-1]), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--suites', type=int, default=4)
    parser.add_argument('--cases', type=int, default=16)
    parser.add_argument('--slow', type=float, default=2.0, help="latency of each suite's one slow case (s)")
    parser.add_argument('--quick', type=float, default=0.2, help='latency of the other cases (s)')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    pytest = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider']
    commands = {
        'gather': ([sys.executable, 'gather.py'], r'cases took ([\d.]+)s'),
        'floor': ([*pytest, 'floor', '-p', 'no:evaltrace'], r' in ([\d.]+)s'),
        'evaltrace': ([*pytest, 'evals'], r' in ([\d.]+)s'),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _project(root, args.suites, args.cases, args.slow, args.quick)
        figures: dict[str, dict[str, list[float]]] = {name: {k: [] for k in ROWS} for name in commands}
        for _ in range(args.rounds):
            for name, (cmd, pattern) in commands.items():
                for row, value in zip(ROWS, _run(cmd, root, pattern), strict=True):
                    figures[name][row].append(value)
    print(
        f'{args.suites} suites x {args.cases} cases (one {args.slow:g} s case, the others {args.quick:g} s), '
        f'medians of {args.rounds} rounds'
    )
    print(f'{"":<34} {"gather s":>9} {"floor s":>8} {"evaltrace s":>12} {"vs gather":>10} {"vs floor":>9}')
    for row, label in ROWS.items():
        g, f, e = (statistics.median(figures[name][row]) for name in commands)
        print(f'{label:<34} {g:>9.2f} {f:>8.2f} {e:>12.2f} {e / g:>9.2f}x {e / f:>8.2f}x')


if __name__ == '__main__':
    main()
