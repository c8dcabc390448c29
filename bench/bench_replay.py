"""Replay against live: 200 eval cases through a real pydantic-ai OpenAI model, live on a local server, then replayed.

A fake OpenAI chat-completions server on 127.0.0.1 answers every request after `--latency` seconds (50 ms by
default). Each round runs `pytest evals` twice in fresh subprocesses: once live with `--evaltrace-record=all` (every
case calls the server and re-records its cassette), then with `--evaltrace-record=none` (every case replays from its
cassette; the run fails if a single request reaches the server). Outputs and usage are checked identical between the
two. Printed: medians of the wall time of the whole `pytest` process and of the eval session alone (report
`started_at` to `finished_at`), side by side, with the ratio.

    uv run python bench/bench_replay.py [--cases 200] [--latency 0.05] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_openai import RecordedRequest, Reply, serve_openai

CONCURRENCY = 20

SUITE = """
import os

import evaltrace
import httpx2
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider


@evaltrace.suite('datasets/bench.yaml', max_concurrency={concurrency})
async def test_bench(inputs: str) -> str:
    async with httpx2.AsyncClient(verify=False) as http:
        client = AsyncOpenAI(base_url=os.environ['BENCH_OPENAI_URL'], api_key='sk-bench', http_client=http, max_retries=0)
        agent = Agent(OpenAIChatModel('gpt-4o-mini', provider=OpenAIProvider(openai_client=client)))
        async with agent:
            return (await agent.run(inputs)).output
"""


def echo(request: RecordedRequest) -> Reply:
    prompt = request.json['messages'][-1]['content']
    return Reply.text(f'answer to {prompt}', prompt_tokens=100 + len(prompt), completion_tokens=8)


def _project(root: Path, n: int) -> None:
    (root / 'datasets').mkdir()
    (root / 'evals').mkdir()
    cases = [
        {'name': f'case{i}', 'inputs': f'question {i}', 'expected_output': f'answer to question {i}'} for i in range(n)
    ]
    (root / 'datasets/bench.yaml').write_text(json.dumps({'cases': cases, 'evaluators': ['EqualsExpected']}))
    (root / 'evals/test_bench.py').write_text(SUITE.format(concurrency=CONCURRENCY))
    (root / 'pyproject.toml').write_text('[tool.pytest.ini_options]\n')


def _run(root: Path, mode: str, env: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    cmd = [sys.executable, '-m', 'pytest', 'evals', '-q', '-p', 'no:cacheprovider', f'--evaltrace-record={mode}']
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f'benchmark command failed ({proc.returncode}): {" ".join(cmd)}\n{proc.stdout[-3000:]}')
    report = json.loads((root / '.evaltrace/report.json').read_text())
    started, finished = (dt.datetime.fromisoformat(report[k]) for k in ('started_at', 'finished_at'))
    return wall, (finished - started).total_seconds(), report


def _outcomes(report: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {c['case']: (c['status'], c['output'], c['task_usage']) for c in report['cases']}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', type=int, default=200)
    parser.add_argument('--latency', type=float, default=0.05, help='seconds the live server waits per request')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()

    live_wall: list[float] = []
    live_session: list[float] = []
    replay_wall: list[float] = []
    replay_session: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, serve_openai(echo, latency=args.latency) as server:
        root = Path(tmp)
        _project(root, args.cases)
        env = {**os.environ, 'BENCH_OPENAI_URL': server.base_url}
        for name in ('EVALTRACE_RECORD', 'EVALTRACE_CASSETTES'):
            env.pop(name, None)
        for _ in range(args.rounds):
            server.requests.clear()
            wall, session, live = _run(root, 'all', env)
            if len(server.requests) != args.cases:
                sys.exit(f'live run made {len(server.requests)} requests, expected {args.cases}')
            live_wall.append(wall)
            live_session.append(session)

            server.requests.clear()
            wall, session, replayed = _run(root, 'none', env)
            if server.requests:
                sys.exit(f'replay run made {len(server.requests)} requests to the server, expected none')
            if not all(c['replayed'] for c in replayed['cases']):
                sys.exit('replay run: some cases were not marked replayed')
            if _outcomes(replayed) != _outcomes(live):
                sys.exit('replay run: outputs, verdicts or usage differ from the live run')
            replay_wall.append(wall)
            replay_session.append(session)

    print(
        f'{args.cases} cases, max_concurrency {CONCURRENCY}, live server latency {args.latency * 1000:.0f} ms, '
        f'median of {args.rounds} rounds'
    )
    print(f'{"":<22} {"live s":>8} {"replay s":>9} {"live/replay":>12}')
    for label, live_s, replay_s in (
        ('pytest process (wall)', live_wall, replay_wall),
        ('eval session', live_session, replay_session),
    ):
        lv, rp = statistics.median(live_s), statistics.median(replay_s)
        print(f'{label:<22} {lv:>8.2f} {rp:>9.2f} {lv / rp:>11.2f}x')
    per_case_ms = statistics.median(replay_session) / args.cases * 1000
    print(f'replay: {per_case_ms:.2f} ms per case in the session, $0 spent, 0 requests to the server')


if __name__ == '__main__':
    main()
