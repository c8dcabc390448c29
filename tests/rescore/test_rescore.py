"""`evaltrace rescore`: the current evaluators on a stored run, without calling the task; and its one-line errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from evaltrace.cli.rescore import run_rescore
from tests.support.eval_project import EvalProject
from tests.support.otlp_sink import otlp_sink

SUITE = """
from pathlib import Path

import evaltrace
import logfire
from dataclasses import dataclass
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage
from pydantic_evals.evaluators import Evaluator, EvaluatorContext

MIN_LENGTH = {min_length}


class Reply(BaseModel):
    text: str
    words: int


@dataclass
class LongEnough(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> bool:
        return ctx.output.words >= MIN_LENGTH


@dataclass
class LookedUp(Evaluator):
    # Span-based: the tool call and the model requests must be in the task's span tree.
    def evaluate(self, ctx: EvaluatorContext) -> dict[str, bool]:
        tools = ctx.span_tree.find(lambda n: n.attributes.get('gen_ai.tool.name') == 'lookup')
        chats = ctx.span_tree.find(lambda n: n.name.startswith('chat '))
        return {{'looked_up': len(tools) == 1, 'two_requests': len(chats) == 2}}


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if len(messages) == 1:
        return ModelResponse(parts=[ToolCallPart('lookup', {{'key': 'x'}})], usage=RequestUsage(input_tokens=40, output_tokens=5))
    return ModelResponse(parts=[TextPart('found it')], usage=RequestUsage(input_tokens=60, output_tokens=8))


agent = Agent(FunctionModel(respond, model_name='fake-model'), name='finder')


@agent.tool_plain
def lookup(key: str) -> str:
    return 'value of ' + key


@evaltrace.suite('datasets/words.yaml', evaluator_types=[LongEnough, LookedUp])
async def test_words(inputs: str) -> Reply:
    with Path('task-calls.txt').open('a') as f:  # the test checks that re-scoring never calls the task
        f.write(inputs + '\\n')
    result = await agent.run(inputs)
    return Reply(text=result.output + ' ' + inputs, words=len(inputs.split()))
"""


def _run(cwd: Path, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`command` in `cwd`, in a fresh process that sees none of the outer run's pytest or evaltrace variables."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(('PYTEST_', 'EVALTRACE_'))}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=inherited | env, timeout=120)


def _evaltrace(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(cwd, [str(Path(sys.executable).with_name('evaltrace')), *args], env)


def _pytest(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(cwd, [sys.executable, '-m', 'pytest', *args, '-p', 'no:cacheprovider'], env)


@pytest.fixture
def stored_run(project: EvalProject) -> dict[str, Any]:
    """A first run, stored: 'one two three' has 3 words, 'one' has 1; MIN_LENGTH 2 fails the second."""
    project.dataset(
        'words',
        [{'name': 'long', 'inputs': 'one two three'}, {'name': 'short', 'inputs': 'one'}],
        evaluators=['LongEnough', 'LookedUp'],
    )
    project.write('evals/test_words.py', SUITE.format(min_length=2))
    result = _pytest(project.path, 'evals')
    assert result.returncode == 1, result.stdout[-2000:]
    calls = project.path / 'task-calls.txt'
    assert calls.read_text().split('\n')[:-1] != []
    calls.unlink()
    return {'report': project.report(), 'project': project}


def _cases(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c['case']: c for c in report['cases']}


def test_rescore_gives_the_new_verdict_without_calling_the_task(stored_run: dict[str, Any]) -> None:
    project: EvalProject = stored_run['project']
    before = stored_run['report']
    assert {n: c['status'] for n, c in _cases(before).items()} == {'long': 'passed', 'short': 'failed'}

    # The threshold changes: now 'long' (3 words) fails too, and 'short' still fails.
    project.write('evals/test_words.py', SUITE.format(min_length=5))
    result = _evaltrace(project.path, 'rescore')
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert f'run {before["run_id"]}' in result.stdout

    assert not (project.path / 'task-calls.txt').exists()  # the task never ran
    after = project.report()
    assert after['rescored_from'] == before['run_id']
    assert 'not called' in after['rescore_note']
    assert 'LLM judge' in after['rescore_note']
    assert after['run_id'] != before['run_id']
    cases = _cases(after)
    assert {n: c['status'] for n, c in cases.items()} == {'long': 'failed', 'short': 'failed'}
    assert cases['long']['assertions']['LongEnough']['value'] is False
    # The stored output came back, validated into the suite's output type.
    assert cases['long']['output'] == _cases(before)['long']['output']
    # Span-based evaluators see the re-emitted task spans: the tool call and both model requests.
    for case in cases.values():
        assert case['assertions']['looked_up']['value'] is True
        assert case['assertions']['two_requests']['value'] is True
    # The task's usage is the stored run's, counted as replayed: nothing was spent on the task.
    assert cases['long']['task_usage'] == _cases(before)['long']['task_usage']
    assert after['session']['stats']['replayed_cost_usd'] == after['session']['stats']['task_usage']['cost_usd']

    # Again from the same stored run (by a prefix of its id, one suite by name), with a lower threshold.
    project.write('evals/test_words.py', SUITE.format(min_length=1))
    result = _evaltrace(project.path, 'rescore', '--run', before['run_id'][:6], 'test_words')
    assert result.returncode == 0, result.stdout[-3000:]
    assert {n: c['status'] for n, c in _cases(project.report()).items()} == {'long': 'passed', 'short': 'passed'}
    assert not (project.path / 'task-calls.txt').exists()


def test_unknown_run_or_suite_is_one_line(stored_run: dict[str, Any]) -> None:
    project: EvalProject = stored_run['project']
    run_id = stored_run['report']['run_id']
    store = project.path / '.evaltrace' / 'traces.duckdb'
    for suites, run, message in (
        ([], 'nosuchrun', f"no run 'nosuchrun' in the trace store (latest runs: {run_id})"),
        (['test_other'], None, f"run {run_id} has no suite 'test_other' (its suites: evals/test_words.py::test_words)"),
    ):
        err = io.StringIO()
        assert run_rescore(suites, run_id=run, store_path=store, err=err, out=io.StringIO()) == 1
        assert err.getvalue() == f'evaltrace rescore: {message}\n'


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    result = _evaltrace(tmp_path, 'rescore')
    assert result.returncode == 1
    assert (
        result.stderr
        == 'evaltrace rescore: no trace store at .evaltrace/traces.duckdb; run your evals with pytest first\n'
    )

    bad = tmp_path / 'bad.duckdb'
    bad.write_bytes(b'not a database at all' * 100)
    result = _evaltrace(tmp_path, 'rescore', '--store', str(bad))
    assert result.returncode == 1
    # An unreadable store is set aside and rebuilt from the spool (empty here), each said in one line.
    assert result.stderr == (
        f'evaltrace: {bad} was not a readable trace store (IO Error: The file "{bad}" exists, but it is not a valid '
        'DuckDB database file!); moved it to bad.duckdb.corrupt and rebuilt the store from the spool (the runs not '
        'yet merged)\nevaltrace rescore: the trace store holds no run; run your evals with pytest first\n'
    )


JUDGED_SUITE = """
import os

import evaltrace
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import LLMJudge

judge = OpenAIChatModel(
    'gpt-4o-mini', provider=OpenAIProvider(base_url=os.environ['JUDGE_URL'], api_key='sk-test-placeholder-0000')
)
dataset = Dataset(
    name='greetings',
    cases=[Case(name='hello', inputs='hello'), Case(name='bye', inputs='bye')],
    evaluators=[LLMJudge(rubric='{rubric}', model=judge)],
)


@evaltrace.suite(dataset, record='once')
async def test_greetings(inputs: str) -> str:
    return inputs.upper()
"""


def test_rescore_replays_recorded_judge_traffic_offline(project: EvalProject) -> None:
    from tests.support.fake_openai import Reply, ToolCall, serve_openai

    verdict = ToolCall('final_result', {'reason': 'It is a greeting.', 'pass': True, 'score': 1.0})
    project.write('evals/test_greetings.py', JUDGED_SUITE.format(rubric='The output is a greeting'))
    with serve_openai(lambda request: Reply.tool(verdict)) as judge:
        judge_url = judge.base_url
        first = _pytest(project.path, 'evals', JUDGE_URL=judge_url)
        assert first.returncode == 0, first.stdout[-3000:]
        assert len(judge.requests) == 2
    # The judge's server is gone: re-scoring replays its recorded answers.
    result = _evaltrace(project.path, 'rescore', JUDGE_URL=judge_url)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cases = _cases(project.report())
    assert {n: c['status'] for n, c in cases.items()} == {'hello': 'passed', 'bye': 'passed'}
    assert all(c['assertions']['LLMJudge']['value'] is True for c in cases.values())
    # A changed rubric asks the judge something it was never asked: that case's one-line miss, no network call.
    project.write('evals/test_greetings.py', JUDGED_SUITE.format(rubric='The output is polite'))
    result = _evaltrace(project.path, 'rescore', JUDGE_URL=judge_url)
    assert result.returncode == 1
    assert {c['status'] for c in _cases(project.report()).values()} == {'error'}
    assert 'no unplayed recorded response matches' in result.stdout


FAITHFUL_SUITE = """
import asyncio
from dataclasses import dataclass

from pydantic import BaseModel
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected, Evaluator, EvaluatorContext, MaxDuration

import evaltrace


class Point(BaseModel):
    x: int


@dataclass
class EndsWell(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> bool:
        return not isinstance(ctx.output, str) or not ctx.output.startswith('x') or ctx.output.endswith('END')


dataset = Dataset(
    name='faithful',
    cases=[
        Case(name='big', inputs='big'),
        Case(name='point', inputs='point', expected_output=Point(x=1)),
        Case(name='slow', inputs='slow'),
        Case(name='plain', inputs='{plain}', expected_output='PLAIN'),
    ],
    evaluators=[EqualsExpected(), EndsWell(), MaxDuration(seconds=0.3)],
)


@evaltrace.suite(dataset)
async def test_faithful(inputs):
    if inputs == 'big':
        return 'x' * 30000 + 'END'  # over max_value_chars: stored cut
    if inputs == 'point':
        return Point(x=1)  # no return annotation: stored as JSON, a dict
    if inputs == 'slow':
        await asyncio.sleep(0.6)  # MaxDuration fails it
        return 'SLOW'
    return inputs.upper()
"""


def test_rescore_refuses_what_it_cannot_rescore_faithfully_and_keeps_durations(project: EvalProject) -> None:
    # Each of these was re-scored wrongly: the report's cut copy of an output as if whole, though the store holds it
    # whole (EndsWell flipped to failed), a model output as
    # the dict JSON keeps of it (EqualsExpected flipped to failed), the stand-in's instant duration (MaxDuration
    # flipped to passed), and a case whose inputs changed against the output of its old inputs (passed).
    project.write('evals/test_faithful.py', FAITHFUL_SUITE.format(plain='plain'))
    first = _pytest(project.path, 'evals')
    assert first.returncode == 1, first.stdout[-3000:]
    before = {n: c['status'] for n, c in _cases(project.report()).items()}
    assert before == {'big': 'passed', 'point': 'passed', 'slow': 'failed', 'plain': 'passed'}
    run_id = project.report()['run_id']

    project.write('evals/test_faithful.py', FAITHFUL_SUITE.format(plain='changed'))
    result = _evaltrace(project.path, 'rescore')
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    cases = _cases(project.report())
    assert {n: c['status'] for n, c in cases.items()} == {
        'big': 'passed',
        'point': 'error',
        'slow': 'failed',
        'plain': 'error',
    }
    nodeid = 'evals/test_faithful.py::test_faithful'
    assert cases['big']['assertions']['EndsWell']['value'] is True
    assert cases['point']['error']['message'] == (
        f'RescoreError: run {run_id} stored the output of {nodeid}[point] as JSON, which does not keep its type '
        '(test_faithful.Point); give the suite function a return annotation, so that rescore can rebuild it'
    )
    assert cases['plain']['error']['message'] == (
        f'RescoreError: the inputs of {nodeid}[plain] changed since run {run_id} stored its output; '
        'run it normally with pytest'
    )
    assert cases['slow']['assertions']['MaxDuration']['value'] is False
    assert cases['slow']['task_duration_s'] >= 0.6

    # With a return annotation the model output is rebuilt, and passes as it did.
    annotated = FAITHFUL_SUITE.format(plain='plain').replace(
        'def test_faithful(inputs):', 'def test_faithful(inputs) -> str | Point:'
    )
    project.write('evals/test_faithful.py', annotated)
    result = _evaltrace(project.path, 'rescore', '--run', run_id)
    assert {n: c['status'] for n, c in _cases(project.report()).items()} == {
        'big': 'passed',
        'point': 'passed',
        'slow': 'failed',
        'plain': 'passed',
    }, result.stdout[-3000:]


def test_an_output_stored_only_cut_is_refused_not_rescored() -> None:
    import asyncio

    from evaltrace.run.rescore import stored_task
    from evaltrace.run.rescore_load import RescoreError, StoredCase
    from evaltrace.safety.bounds import bound_value

    for cut in (bound_value('x' * 50 + 'END', 20), bound_value({'a': 'x' * 50, 'b': 1}, 20), bound_value([1] * 50, 20)):
        stored = StoredCase('t.py::t[a]', 'f' * 32, output=cut, has_output=True)
        task = stored_task(stored, 'run1', None, 'task', 't.py::t[a]')
        with pytest.raises(RescoreError, match=r'^run run1 stored the output of t.py::t\[a\] cut at max_value_chars'):
            asyncio.run(task('a'))
    whole = StoredCase('t.py::t[a]', 'f' * 32, output={'a': 'truncated'}, has_output=True)
    assert asyncio.run(stored_task(whole, 'run1', None, 'task', 't.py::t[a]')('a')) == {'a': 'truncated'}


UNORDERED_SUITE = """
from dataclasses import dataclass

from pydantic import BaseModel
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected

import evaltrace


class Opaque:
    pass


class Tagged(BaseModel):
    tags: set[str]
    more: list[frozenset[str]]


@dataclass
class Labels:
    names: frozenset[str]


dataset = Dataset(
    name='unordered',
    cases=[
        Case(name='tags', inputs=frozenset({'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'}), expected_output=6),
        Case(name='nested', inputs={'tags': {'x', 'y', 'z', 'w'}, 'n': 1}, expected_output=6),
        Case(name='opaque', inputs=Opaque(), expected_output=6),
        Case(
            name='model',
            inputs=Tagged(tags={'alpha', 'beta', 'gamma', 'delta'}, more=[frozenset({'x', 'y', 'z', 'w'})]),
            expected_output=6,
        ),
        Case(name='dataclass', inputs=Labels(frozenset({'one', 'two', 'three', 'four', 'five'})), expected_output=6),
    ],
    evaluators=[EqualsExpected()],
)


@evaltrace.suite(dataset)
async def test_unordered(inputs) -> int:
    return 6
"""


def test_rescore_accepts_unchanged_set_and_opaque_inputs_in_another_process(project: EvalProject) -> None:
    # A set's order follows string hashing, which each process seeds anew, and an object with no serialiser was
    # digested as its repr, address and all: rescore refused every such case as one whose inputs had changed.
    project.write('evals/test_unordered.py', UNORDERED_SUITE)
    first = _pytest(project.path, 'evals', PYTHONHASHSEED='1')
    assert first.returncode == 0, first.stdout[-3000:]
    result = _evaltrace(project.path, 'rescore', PYTHONHASHSEED='2')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert {n: c['status'] for n, c in _cases(project.report()).items()} == dict.fromkeys(
        ('tags', 'nested', 'opaque', 'model', 'dataclass'), 'passed'
    )


SCRUBBED_SUITE = """
from dataclasses import dataclass

from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import Evaluator, EvaluatorContext

import evaltrace


@dataclass
class EndsWell(Evaluator):
    def evaluate(self, ctx: EvaluatorContext) -> bool:
        return ctx.output.endswith('END')


dataset = Dataset(
    name='scrubbed',
    cases=[Case(name='short', inputs=10), Case(name='long', inputs=500)],
    evaluators=[EndsWell()],
)


@evaltrace.suite(dataset)
async def test_scrubbed(inputs: int) -> str:
    return 'your session key sk-' + 'a' * 20 + ' ' + 'x' * inputs + ' END'
"""


def test_rescore_never_judges_an_output_logfire_scrubbed_in_the_store(project: EvalProject) -> None:
    # In a run that exports its spans (here to an OTLP endpoint; offline logfire does not scrub), logfire keeps an
    # output that mentions 'session' unless it holds something shaped like a credential; then it stores
    # "[Scrubbed due to 'session']" in its place, in the store too. That copy was preferred to the report's cut one,
    # and rescore judged the marker (EndsWell failed a case that ended well).
    project.write('pyproject.toml', '[tool.pytest.ini_options]\nevaltrace_max_value_chars = 250\n')
    project.write('evals/test_scrubbed.py', SCRUBBED_SUITE)
    with otlp_sink() as (url, _):
        first = _pytest(project.path, 'evals', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=url)
    assert first.returncode == 0, first.stdout[-3000:]
    run_id = project.report()['run_id']
    nodeid = 'evals/test_scrubbed.py::test_scrubbed[long]'

    result = _evaltrace(project.path, 'rescore')
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    cases = _cases(project.report())
    assert cases['short']['status'] == 'passed'  # the report's whole copy
    assert cases['long']['status'] == 'error'
    assert cases['long']['error']['message'].startswith(
        f'RescoreError: run {run_id} stored the output of {nodeid} cut at max_value_chars'
    )

    # Without the run's report (report.json is now the rescore's), the store's copy is all there is: refused too.
    result = _evaltrace(project.path, 'rescore', '--run', run_id)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    cases = _cases(project.report())
    assert {c['status'] for c in cases.values()} == {'error'}
    assert cases['long']['error']['message'] == (
        f"RescoreError: run {run_id} stored the output of {nodeid} scrubbed ([Scrubbed due to 'session']), "
        'so it cannot be re-scored; run it normally with pytest'
    )


def test_rescore_of_one_shard_rescores_its_cases_and_leaves_out_the_other_shards(project: EvalProject) -> None:
    # Five cases, two shards: shard 1 runs three, shard 2 two. 'one' alone is short (1 word, MIN_LENGTH 2).
    words = {'a': 'one two', 'b': 'one two three', 'c': 'one', 'd': 'one two three four', 'e': 'five six'}
    project.dataset(
        'words', [{'name': n, 'inputs': w} for n, w in words.items()], evaluators=['LongEnough', 'LookedUp']
    )
    project.write('evals/test_words.py', SUITE.format(min_length=2))
    runs: dict[int, dict[str, str]] = {}
    for index in (1, 2):
        _pytest(project.path, 'evals', f'--evaltrace-shard={index}/2')
        report = project.report()
        assert report['shard']['count'] == 2
        runs[index] = {'run_id': report['run_id'], **{n: c['status'] for n, c in _cases(report).items()}}
    shutil.copyfile(project.path / '.evaltrace' / 'report.json', project.path / 'shard2.json')
    (project.path / 'task-calls.txt').unlink()
    shard1 = {n: s for n, s in runs[1].items() if n != 'run_id'}
    shard2 = {n: s for n, s in runs[2].items() if n != 'run_id'}
    assert sorted([*shard1, *shard2]) == sorted(words) and len(shard1) == 3

    def rescore(index: int, cases: dict[str, str], others: int, *args: str) -> None:
        run_id = runs[index]['run_id']
        result = _evaltrace(project.path, 'rescore', '--run', run_id, *args)
        failed = any(s != 'passed' for s in cases.values())
        assert result.returncode == int(failed), result.stdout[-3000:] + result.stderr[-2000:]
        after = project.report()
        assert {n: c['status'] for n, c in _cases(after).items()} == cases  # none of the others' is an error
        assert after['rescored_from'] == run_id
        assert after['rescore_left_out'] == others
        # It is that shard: its report is not recorded in the history as a whole run's.
        assert (after['shard']['index'], after['shard']['count']) == (index, 2)
        assert sorted(after['expected']) == sorted(f'evals/test_words.py::test_words[{n}]' for n in cases)
        assert after['session']['stats']['cases'] == len(cases)
        line = f'rescore: left out {others} case(s) that run {run_id} did not run: it was shard {index}/2'
        assert result.stdout.count(line) == 1, result.stdout[-3000:]
        assert 'stored no trace' not in result.stdout

    # The report on disk is shard 2's: shard 1's run is known from the store alone, and so is shard 2's after it.
    rescore(1, shard1, len(shard2))
    rescore(2, shard2, len(shard1))
    # A run stored before case roots said their shard: the run's own report says it, when it is at hand.
    with duckdb.connect(str(project.path / '.evaltrace' / 'traces.duckdb')) as con:
        con.execute("""UPDATE records SET attributes = json_remove(attributes, '$."evaltrace.shard"')""")
    rescore(2, shard2, len(shard1), '--report', 'shard2.json')
    assert not (project.path / 'task-calls.txt').exists()
