"""Harness overhead: `pytest` through evaltrace against a plain `Dataset.evaluate`, same dataset and task, one run.

Two workloads: a trivial task over 1,000 cases, and 200 cases with a simulated 50 ms model latency. Each side runs
in a fresh subprocess (interpreter start and imports included on both sides), alternating, `--rounds` times; the
medians and their ratio are printed, with the harness overhead per case.

    uv run python bench/bench_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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
    (root / 'pyproject.toml').write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')


def _time(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(
            f'benchmark command failed ({proc.returncode}): {" ".join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}'
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    print(f'{"workload":<20} {"plain s":>9} {"evaltrace s":>12} {"ratio":>7} {"overhead/case":>14}')
    for label, w in WORKLOADS.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            _project(root, int(w['cases']), float(w['latency']))
            plain: list[float] = []
            harness: list[float] = []
            for _ in range(args.rounds):
                plain.append(_time([sys.executable, 'plain.py'], root))
                harness.append(_time([sys.executable, '-m', 'pytest', 'evals', '-q', '-p', 'no:cacheprovider'], root))
            p, h = statistics.median(plain), statistics.median(harness)
            per_case_ms = (h - p) / w['cases'] * 1000
            print(f'{label:<20} {p:>9.2f} {h:>12.2f} {h / p:>6.2f}x {per_case_ms:>11.2f} ms')


if __name__ == '__main__':
    main()
