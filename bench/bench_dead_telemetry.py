"""The extra seconds a dead telemetry backend costs a run: the same eval workload, side by side, in one run.

Each variant runs `pytest evals/` in a fresh subprocess (telemetry is process-wide) on the same project: 40 cases
of a task that waits 20 ms. Variants: no backend; a healthy OTLP endpoint; a closed port; an endpoint that resets
connections; one that answers 503; one that accepts and never answers, through OTLP and through Logfire's own token path
(`LOGFIRE_TOKEN` + `LOGFIRE_BASE_URL`). All endpoints are on 127.0.0.1. Printed:
wall time of each, and its extra seconds over the no-backend run (evaltrace's bound: 5 s).

    .venv/bin/python bench/bench_dead_telemetry.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.broken_endpoints import broken_endpoint  # noqa: E402
from tests.support.otlp_sink import otlp_sink  # noqa: E402

CASES = 40
SUITE = """
import asyncio
import evaltrace

@evaltrace.suite('datasets/cases.yaml')
async def test_cases(inputs: str) -> str:
    await asyncio.sleep(0.02)
    return inputs
"""


@contextmanager
def healthy_endpoint() -> Generator[str]:
    with otlp_sink() as (url, _):
        yield url


@contextmanager
def no_endpoint() -> Generator[str]:
    yield ''


def run(project: Path, url: str, logfire_token: bool = False) -> tuple[float, int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(('OTEL_', 'LOGFIRE_'))}
    if url and logfire_token:
        # Logfire's own path: a write token and a base URL; logfire checks the token in a thread of its own.
        env['LOGFIRE_TOKEN'] = 'pylf_v1_us_' + 'x' * 40
        env['LOGFIRE_BASE_URL'] = url.removesuffix('/v1/traces')
    elif url:
        env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] = url
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', 'evals', '-q', '-p', 'no:cacheprovider'],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - t0
    line = next((ln for ln in proc.stdout.splitlines() if 'traces could not be sent' in ln), '')
    return elapsed, proc.returncode, line


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / 'pyproject.toml').write_text('[tool.pytest.ini_options]\n')
        (project / 'datasets').mkdir()
        cases = [{'name': f'c{i}', 'inputs': f'w{i}', 'expected_output': f'w{i}'} for i in range(CASES)]
        (project / 'datasets/cases.yaml').write_text(json.dumps({'cases': cases, 'evaluators': ['EqualsExpected']}))
        (project / 'evals').mkdir()
        (project / 'evals/test_cases.py').write_text(SUITE)
        variants = [
            ('no backend', no_endpoint),
            ('healthy OTLP endpoint', healthy_endpoint),
            ('closed port', lambda: broken_endpoint('closed')),
            ('connection reset', lambda: broken_endpoint('reset')),
            ('503 answers', lambda: broken_endpoint('503')),
            ('accepts, never answers', lambda: broken_endpoint('hang')),
            ('Logfire token, hangs', lambda: broken_endpoint('hang')),
        ]
        run(project, '')  # warm the file system caches
        baseline = None
        print(f'{CASES} cases x 20 ms, one pytest subprocess per variant')
        print(f'{"variant":<26} {"wall s":>7} {"extra s":>8} {"exit":>5}  message')
        for name, endpoint in variants:
            with endpoint() as url:
                elapsed, code, line = run(project, url, logfire_token=name.startswith('Logfire'))
            if baseline is None:
                baseline = elapsed
            extra = elapsed - baseline
            print(f'{name:<26} {elapsed:7.2f} {extra:+8.2f} {code:5d}  {"yes" if line else "-"}')


if __name__ == '__main__':
    main()
