"""Gates, k-of-n, baselines, JUnit properties and GitHub outputs, seen from outside through inner pytest runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from logfire.testing import CaptureLogfire

from evaltrace.cli import main as evaltrace_main
from evaltrace.report.final import build
from tests.support.eval_project import EvalProject
from tests.support.words_suite import SUITE, WORDS

# 5 cases: 3 pass, 1 fails its assertion (quality 0.5), 1 errors. Four agent runs of 100 + 20 tokens each.
# (gate key, threshold that holds, threshold that breaks, actual)
SUITE_GATES: list[tuple[str, Any, Any, Any]] = [
    ('min_pass_rate', 0.6, 0.61, 0.6),
    ('min_assertion_pass_rate', 0.75, 0.76, 0.75),
    ('min_evaluator_pass_rate', {'EqualsExpected': 0.75}, {'EqualsExpected': 0.8}, 0.75),
    ('min_score_avg', {'quality': 0.875}, {'quality': 0.9}, 0.875),
    ('max_errors', 1, 0, 1),
]
SESSION_GATES: list[tuple[str, Any, Any, Any]] = [
    ('max_cost_usd', 0.01, 0.00001, None),
    ('max_cost_per_case_usd', 0.001, 0.00001, None),
    ('max_total_tokens', 480, 479, 480),
    ('max_p95_duration_s', 60, 0.000001, None),
    ('min_pass_rate_lower_bound', 0.2, 0.3, 0.230724),
]


def _gate_code(gate: dict[str, Any]) -> str:
    return f'evaltrace.Gate(**{gate!r})'


def _glob(text: str) -> str:
    """`text` with fnmatch's brackets escaped."""
    return ''.join({'[': '[[]', ']': '[]]'}.get(ch, ch) for ch in text)


def _name(key: str, threshold: Any) -> str:
    return f'{key}[{next(iter(threshold))}]' if isinstance(threshold, dict) else key


def _toml(gates: list[tuple[str, Any, Any, Any]], index: int) -> str:
    lines = ['[tool.evaltrace.gate]']
    for key, *values in gates:
        value = values[index]
        lines.append(f'{key} = {json.dumps(value).replace(":", " =") if isinstance(value, dict) else value}')
    return '\n'.join(lines).replace('{"', '{ "').replace('" =', '" =') + '\n'


def _setup_gated(project: EvalProject, index: int) -> None:
    project.dataset('words', WORDS, ['EqualsExpected', 'Quality'])
    project.write('evals/test_words.py', SUITE.format(gate=_gate_code({k: v[index] for k, *v in SUITE_GATES})))
    project.write('pyproject.toml', '[tool.pytest.ini_options]\n' + _toml(SESSION_GATES, index))


def _run(project: EvalProject, *args: str) -> pytest.RunResult:
    return project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', *args)


def _gates(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {g['name']: g for s in report['suites'] for g in s['gates']}
    found.update({g['name']: g for g in report['session']['gates']})
    return found


def test_every_gate_kind_passing_exits_0_and_shows_everywhere(project: EvalProject, capfire: CaptureLogfire) -> None:
    _setup_gated(project, 0)
    result = _run(
        project,
        'evals',
        '--junitxml=junit.xml',
        '--evaltrace-trace-url=http://otel.test/trace/{trace_id}?span={span_id}',
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4, failed=0)  # failing cases are listed (as gated), but only the gates decide
    assert result.parseoutcomes()['gated'] == 2
    report = json.loads((project.path / '.evaltrace/report.json').read_text())
    gates = _gates(report)
    for key, holds, _, actual in SUITE_GATES + SESSION_GATES:
        gate = gates[_name(key, holds)]
        assert gate['passed'], gate
        assert gate['threshold'] == (next(iter(holds.values())) if isinstance(holds, dict) else holds)
        if actual is not None:
            assert gate['actual'] == pytest.approx(actual, abs=1e-6)
        result.stdout.fnmatch_lines([f'*gate {_glob(_name(key, holds))}: PASS (actual *, threshold *)*'])
    assert report['session']['gates_passed'] is True
    stats = report['session']['stats']
    # The cost comes from the harness instrumenting pydantic-ai and genai-prices pricing gpt-4o-mini.
    assert stats['usage']['cost_usd'] > 0
    assert gates['max_cost_usd']['actual'] == pytest.approx(stats['usage']['cost_usd'])
    assert gates['max_cost_per_case_usd']['actual'] == pytest.approx(stats['usage']['cost_usd'] / 4)

    # JUnit XML carries each case's trace link, cost, tokens and scores as properties.
    root = ET.parse(project.path / 'junit.xml').getroot()
    props = {
        tc.get('name'): {p.get('name'): p.get('value') for p in tc.iter('property')} for tc in root.iter('testcase')
    }
    w0 = props['test_words[w0]']
    case = next(c for c in report['cases'] if c['case'] == 'w0')
    assert w0['trace_url'] == f'http://otel.test/trace/{case["trace_id"]}?span={case["span_id"]}'
    assert float(w0['cost_usd']) == pytest.approx(case['task_usage']['cost_usd']) != 0
    assert (w0['input_tokens'], w0['output_tokens']) == ('100', '20')
    assert float(w0['score.quality']) == 1.0
    assert props['test_words[bad]']['score.quality'] == '0.5'
    assert 'trace_url' not in props['test_plain']


def test_every_gate_kind_failing_exits_6_and_reports_on_github(
    project: EvalProject, capfire: CaptureLogfire, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _setup_gated(project, 1)
    step_summary = tmp_path / 'step_summary.md'
    step_summary.write_text('earlier step\n')
    monkeypatch.setenv('GITHUB_ACTIONS', 'true')
    monkeypatch.setenv('GITHUB_STEP_SUMMARY', str(step_summary))
    result = _run(
        project, 'evals', '--evaltrace-markdown=out/summary.md', '--evaltrace-trace-url=http://otel.test/{trace_id}'
    )
    assert result.ret == 6, result.stdout.str()
    report = json.loads((project.path / '.evaltrace/report.json').read_text())
    gates = _gates(report)
    for key, _, breaks, _ in SUITE_GATES + SESSION_GATES:
        gate = gates[_name(key, breaks)]
        assert not gate['passed'], gate
        result.stdout.fnmatch_lines([f'*gate {_glob(_name(key, breaks))}: FAIL (actual *, threshold *)*'])
    assert report['session']['gates_passed'] is False

    # One ::error annotation per failing case, carrying the link, written through the terminal.
    annotations = [line for line in result.outlines if line.startswith('::error file=')]
    by_case = {c['case']: c for c in report['cases']}
    assert len(annotations) == 2
    for name in ('bad', 'boom'):
        [line] = [a for a in annotations if 'title=eval case' in a and f'%3A {name}::' in a]
        assert line.startswith('::error file=evals/test_words.py,')
        assert line.endswith(f'trace: http://otel.test/{by_case[name]["trace_id"]}')
    assert len([line for line in result.outlines if line.startswith('::error title=evaltrace gate failed')]) == 10

    # The step summary is appended to, and the markdown file holds the same text.
    text = step_summary.read_text()
    assert text.startswith('earlier step\n## ❌ evaltrace: gate failed')
    assert text.removeprefix('earlier step\n').rstrip('\n') == (project.path / 'out/summary.md').read_text().rstrip(
        '\n'
    )
    assert '| evals/test_words.py::test_words | 3 | 1 | 1 | 60.0% | 75.0% | 480 |' in text
    assert '| session | max_total_tokens | 479 | 480 | ❌ fail |' in text
    assert f'[trace](http://otel.test/{by_case["bad"]["trace_id"]})' in text


def test_one_failing_gate_alone_exits_6(project: EvalProject, capfire: CaptureLogfire) -> None:
    project.dataset('words', WORDS[:3], ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate=_gate_code({'max_total_tokens': 359})))
    result = _run(project, 'evals')
    assert result.ret == 6
    result.assert_outcomes(passed=4, failed=1)  # every case passed: only the gate failed, as a test of its own
    result.stdout.fnmatch_lines(['*gate max_total_tokens: FAIL (actual 360, threshold 359)*'])


def test_without_a_gate_a_failing_case_fails_the_session_with_1(project: EvalProject, capfire: CaptureLogfire) -> None:
    project.dataset('words', WORDS[:4], ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate=None))
    result = _run(project, 'evals')
    assert result.ret == 1


def test_skip_switch_runs_the_rest_of_the_test_suite(project: EvalProject, capfire: CaptureLogfire) -> None:
    project.dataset('words', WORDS, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate=_gate_code({'min_pass_rate': 1.0})))
    result = _run(project, 'evals', '--evaltrace-skip', '-rs')
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes['passed'] == 1
    assert outcomes['skipped'] >= 1
    result.stdout.fnmatch_lines(['*--evaltrace-skip*'])
    assert capfire.exporter.exported_spans == []  # no case ran, so no trace


REPEATED = """
import collections
import evaltrace

calls = collections.Counter()


@evaltrace.suite('datasets/words.yaml', repeat=3, pass_k={k})
def test_repeated(inputs: str) -> str:
    calls[inputs] += 1
    if inputs == 'alpha' and calls[inputs] == 2:  # w0: one run in three goes wrong
        return 'wrong'
    if inputs == 'beta' and calls[inputs] != 2:  # w1: two runs in three go wrong
        return 'wrong'
    return inputs.upper()
"""


@pytest.mark.parametrize(('k', 'status', 'logical_passed', 'failed'), [(1, 0, 3, 0), (2, 1, 2, 2), (3, 1, 1, 3)])
def test_k_of_n_and_flaky_cases(
    project: EvalProject, capfire: CaptureLogfire, k: int, status: int, logical_passed: int, failed: int
) -> None:
    project.dataset('words', WORDS[:3], ['EqualsExpected'])
    project.write('evals/test_repeated.py', REPEATED.format(k=k))
    result = _run(project, 'evals')
    # The failing runs of a case that passes by k-of-n are gated, not failed (see test_gated_failures_...).
    result.assert_outcomes(passed=6, failed=failed)
    assert result.parseoutcomes().get('gated', 0) == 3 - failed
    assert result.ret == status
    stats = json.loads((project.path / '.evaltrace/report.json').read_text())['session']['stats']
    assert (stats['logical_cases'], stats['logical_passed']) == (3, logical_passed)
    flaky = {f['case']: (f['passed'], f['runs'], f['pass_ratio']) for f in stats['flaky']}
    suite = 'evals/test_repeated.py::test_repeated'
    assert flaky == {f'{suite}[w0]': (2, 3, 0.6667), f'{suite}[w1]': (1, 3, 0.3333)}
    result.stdout.fnmatch_lines([f'*flaky: {_glob(suite)}[[]w0[]] passed 2/3 (pass ratio 67%)*'])


BASELINE_SUITE = """
import evaltrace
from pydantic_ai import Agent
from helpers_models import priced_model

agent = Agent(priced_model(input_tokens={tokens}, output_tokens=20))
BROKEN = {broken!r}


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    if inputs in BROKEN:
        return 'broken'
    return (await agent.run(inputs)).output
"""


def test_baseline_diff_and_regression_gates(project: EvalProject, capfire: CaptureLogfire) -> None:
    project.dataset('words', WORDS[:4], ['EqualsExpected'])
    project.write('evals/test_words.py', BASELINE_SUITE.format(tokens=100, broken=()))
    assert _run(project, 'evals').ret == 1  # `bad` fails, no gate
    report_path = project.path / '.evaltrace/report.json'
    baseline_path = project.path / 'evals/baseline.json'
    assert evaltrace_main(['baseline', 'save', '--report', str(report_path), '-o', str(baseline_path)]) == 0
    assert json.loads(baseline_path.read_text())['suites']['evals/test_words.py::test_words']['cases']['w0'][
        'assertions'
    ] == {'EqualsExpected': True}

    # Next run: w1 breaks, `bad` gets new expectations (changed), w2 is removed, w3 added; the agent costs more.
    cases = [
        *WORDS[:2],
        {**WORDS[3], 'expected_output': 'DELTA'},
        {'name': 'w3', 'inputs': 'eps', 'expected_output': 'EPS'},
    ]
    project.dataset('words', cases, ['EqualsExpected'])
    project.write('evals/test_words.py', BASELINE_SUITE.format(tokens=300, broken=('beta',)))
    project.write(
        'pyproject.toml',
        '[tool.pytest.ini_options]\n[tool.evaltrace.gate]\nno_assertion_regressions = true\nmax_cost_increase_pct = 5\n',
    )
    result = _run(project, 'evals')
    assert result.ret == 6, result.stdout.str()
    report = json.loads(report_path.read_text())
    cmp = report['baseline']
    assert cmp['path'] == 'evals/baseline.json'
    key = 'evals/test_words.py::test_words[{}]'.format
    assert cmp['session']['newly_failing'] == [key('w1')]
    assert cmp['session']['added'] == [key('w3')]
    assert cmp['session']['removed'] == [key('w2')]
    assert cmp['session']['changed'] == [key('bad')]
    [suite] = cmp['suites']
    assert suite['compared'] == 2
    assert suite['evaluator_pass_rates']['EqualsExpected'] == {'baseline': 1.0, 'current': 0.5, 'delta': -0.5}
    gates = _gates(report)
    assert gates['no_assertion_regressions']['actual'] == 1
    assert not gates['no_assertion_regressions']['passed']
    cost = gates['max_cost_increase_pct']
    # Compared: w0 (300 input tokens instead of 100) and w1 (broken, no model call): 57 vs 54 millionths of a dollar.
    assert cost['actual'] == pytest.approx(5.5556, abs=1e-3)
    assert not cost['passed']
    result.stdout.fnmatch_lines(
        [
            '*gate no_assertion_regressions: FAIL (actual 1, threshold 0)*test_words[[]w1[]] EqualsExpected*',
            'baseline evals/baseline.json (run *',
            '*1 newly failing, 0 newly fixed, 1 added, 1 removed, 1 changed*',
            '*newly failing (1): evals/test_words.py::test_words[[]w1[]]*',
            '*changed (inputs or expected output differ), not compared (1): evals/test_words.py::test_words[[]bad[]]*',
        ]
    )


def test_an_unreadable_baseline_is_a_harness_error_with_status_7(project: EvalProject, capfire: CaptureLogfire) -> None:
    project.dataset('words', WORDS[:1], ['EqualsExpected'])
    project.write('evals/test_words.py', BASELINE_SUITE.format(tokens=100, broken=()))
    project.write('evals/baseline.json', '{not json')
    result = _run(project, 'evals')
    assert result.ret == 7
    result.stdout.fnmatch_lines(['*evaltrace error: *evals/baseline.json: not a valid JSON baseline*'])


def test_shards_split_the_cases_and_merge_back_with_every_gate_recomputed(
    project: EvalProject, capfire: CaptureLogfire, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [{'name': f'c{i}', 'inputs': f'w{i}', 'expected_output': f'W{i}'} for i in range(7)]
    cases[3]['expected_output'] = 'wrong'
    project.dataset('words', cases, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate=_gate_code({'min_pass_rate': 0.8})))
    reports: list[str] = []
    ran: list[set[str]] = []
    for index in (1, 2, 3):
        path = f'.evaltrace/shard{index}.json'
        result = _run(project, 'evals', f'--evaltrace-shard={index}/3', f'--evaltrace-report={path}')
        assert result.ret in (0, 6)
        data = json.loads((project.path / path).read_text())
        assert data['shard']['index'] == index
        assert data['shard']['count'] == 3
        assert data['shard']['total_cases'] == 7
        assert sorted(data['expected']) == sorted(c['nodeid'] for c in data['cases'])
        ran.append({c['case'] for c in data['cases']})
        # The other shards' cases are deselected, reported as pytest reports any deselection; plain tests stay.
        result.stdout.fnmatch_lines([f'collected 8 items / {7 - len(data["expected"])} deselected / *'])
        reports.append(str(project.path / path))
    assert sorted(len(r) for r in ran) == [2, 2, 3]  # balanced by count
    assert set().union(*ran) == {f'c{i}' for i in range(7)}  # every case once
    assert sum(map(len, ran)) == 7

    merged = str(project.path / 'merged.json')
    md = str(project.path / 'merged.md')
    # 6 of 7 pass (86%): the merged run passes the gate whatever each shard said.
    assert evaltrace_main(['merge', *reports, '-o', merged, '--markdown', md]) == 0
    data = json.loads(Path(merged).read_text())
    assert data['complete'] is True
    assert data['session']['stats']['cases'] == 7
    [gate] = data['suites'][0]['gates']
    assert (gate['name'], gate['passed'], gate['actual']) == ('min_pass_rate', True, pytest.approx(6 / 7, abs=1e-6))
    assert Path(md).read_text().startswith('## ✅ evaltrace (merged): passed')

    # A missing shard: the merge fails, and says why.
    capsys.readouterr()
    assert evaltrace_main(['merge', *reports[:2], '-o', merged]) == 7
    err = capsys.readouterr().err
    assert 'incomplete merge: shard 3/3 is missing' in err
    assert json.loads(Path(merged).read_text())['complete'] is False
    # The same shard twice.
    assert evaltrace_main(['merge', reports[0], reports[0], reports[1], reports[2], '-o', merged]) == 7
    assert 'shard 1/3 is given more than once' in capsys.readouterr().err
    # A case that never ran (a shard cut short after writing its report).
    cut = json.loads(Path(reports[2]).read_text())
    lost = cut['cases'].pop()
    Path(reports[2]).write_text(json.dumps(cut))
    assert evaltrace_main(['merge', *reports, '-o', merged]) == 7
    assert f'1 expected case(s) never ran: {lost["nodeid"]}' in capsys.readouterr().err


def test_baseline_save_refuses_an_incomplete_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / 'report.json'
    incomplete = build(
        run_id='r', started_at='', finished_at=None, complete=False, suites=[], cases=[], session_gate=None
    ).to_json()
    report.write_text(json.dumps(incomplete))
    assert evaltrace_main(['baseline', 'save', '--report', str(report), '-o', str(tmp_path / 'b.json')]) == 2
    assert 'incomplete' in capsys.readouterr().err
    assert not (tmp_path / 'b.json').exists()


def test_an_empty_gate_gives_one_verdict_everywhere(project: EvalProject, capfire: CaptureLogfire) -> None:
    """`Gate()` sets no threshold: it is no gate, and a failing case fails the run in pytest, in the summaries,
    in the report and in `evaltrace merge` alike."""
    project.dataset('words', WORDS[:4], ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate='evaltrace.Gate()'))
    result = _run(project, 'evals', '--evaltrace-markdown=summary.md')
    assert result.ret == 1
    markdown = (project.path / 'summary.md').read_text(encoding='utf-8')
    assert markdown.startswith('## ❌ evaltrace: failed')
    report = project.report()
    assert (report['verdict']['word'], report['verdict']['exit_status']) == ('failed', 1)
    result.stdout.fnmatch_lines(['verdict: failed (exit status 1)*'])
    assert evaltrace_main(['merge', '.evaltrace/report.json', '-o', 'merged.json', '--markdown', 'merged.md']) == 1
    assert (project.path / 'merged.md').read_text(encoding='utf-8').startswith('## ❌ evaltrace (merged): failed')


MISSING_FIXTURE_SUITE = """
import evaltrace


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str, no_such_fixture: str) -> str:
    return inputs.upper()
"""


def test_a_suite_asking_for_a_missing_fixture_is_a_setup_error_with_pytests_message(
    project: EvalProject, capfire: CaptureLogfire
) -> None:
    project.dataset('words', WORDS[:2], ['EqualsExpected'])
    project.write('evals/test_words.py', MISSING_FIXTURE_SUITE)
    result = _run(project, 'evals', '--evaltrace-markdown=summary.md')
    assert result.ret == 1
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'no_such_fixture' not found*"])
    report = project.report()
    assert report['complete'] is True
    assert {c['status'] for c in report['cases']} == {'error'}
    assert all("fixture 'no_such_fixture' not found" in c['failures'][0] for c in report['cases'])
    assert report['verdict']['exit_status'] == 1
    assert (project.path / 'summary.md').read_text(encoding='utf-8').startswith('## ❌ evaltrace: failed')


@pytest.mark.parametrize('verbosity', ['-q', '-qq', '-v', '-rA'])
def test_every_annotation_starts_its_own_line(
    project: EvalProject, capfire: CaptureLogfire, monkeypatch: pytest.MonkeyPatch, verbosity: str
) -> None:
    """GitHub reads a workflow command only at the start of a line: never glued to the `[100%]` progress."""
    monkeypatch.setenv('GITHUB_ACTIONS', 'true')
    monkeypatch.delenv('GITHUB_STEP_SUMMARY', raising=False)
    project.dataset('words', WORDS, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate=_gate_code({'min_pass_rate': 0.9})))
    result = _run(project, 'evals', verbosity)
    assert result.ret == 6
    glued = [line for line in result.outlines if '::error' in line and not line.startswith('::error')]
    assert not glued
    assert len([line for line in result.outlines if line.startswith('::error')]) == 3  # two cases, one gate


def test_gated_failures_have_their_own_outcome_in_the_terminal_and_in_junit(
    project: EvalProject, capfire: CaptureLogfire
) -> None:
    """Under a passing gate a green run says "2 gated", not "2 failed", and JUnit counts no failure."""
    project.dataset('words', WORDS, ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE.format(gate=_gate_code({'min_pass_rate': 0.5})))
    result = _run(project, 'evals', '-v', '--junitxml=junit.xml', '-rA')
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    assert (outcomes.get('passed'), outcomes.get('gated'), outcomes.get('failed')) == (4, 2, None)  # test_plain too
    result.stdout.fnmatch_lines(['*test_words?bad? GATED*', '*test_words?boom? GATED*', '*4 passed, 2 gated in*'])
    root = ET.parse(project.path / 'junit.xml').getroot()
    suite = root if root.tag == 'testsuite' else root.find('testsuite')
    assert suite is not None
    assert (suite.get('failures'), suite.get('errors'), suite.get('skipped')) == ('0', '0', '2')
    gated = {tc.get('name'): tc for tc in suite.iter('testcase') if tc.find('skipped') is not None}
    assert set(gated) == {'test_words[bad]', 'test_words[boom]'}
    skipped = gated['test_words[bad]'].find('skipped')
    assert skipped is not None and 'evaltrace: gated failure' in (skipped.get('message') or '')
    props = {p.get('name'): p.get('value') for p in gated['test_words[bad]'].iter('property')}
    assert props['evaltrace.outcome'] == 'gated'
    # The same failing cases without a gate fail, as before.
    project.write('evals/test_words.py', SUITE.format(gate='None'))
    result = _run(project, 'evals')
    assert result.ret == 1
    result.assert_outcomes(passed=4, failed=2)


@pytest.mark.parametrize(
    'selection',
    [('-k', 'w0'), ('--evaltrace-filter', 'tier=a'), ('evals/test_words.py::test_words[w0]',), ('-n', '2', '-k', 'w0')],
)
def test_a_partial_run_lists_no_case_of_the_baseline_as_removed(
    project: EvalProject, capfire: CaptureLogfire, selection: tuple[str, ...]
) -> None:
    """`-k`, a filter or a node id runs some cases: the others were not removed, only not selected."""
    project.dataset('words', [{**WORDS[0], 'metadata': {'tier': 'a'}}, *WORDS[1:4]], ['EqualsExpected'])
    project.write('evals/test_words.py', BASELINE_SUITE.format(tokens=100, broken=()))
    _run(project, 'evals')
    report_path = project.path / '.evaltrace/report.json'
    assert evaltrace_main(['baseline', 'save', '--report', str(report_path), '-o', 'evals/baseline.json']) == 0
    args = selection if selection[0].startswith('evals/') else ('evals', *selection)
    if '-n' in args:  # the xdist controller collects nothing: it knows the selection from the command line
        result = project.pytester.runpytest_subprocess('-p', 'no:cacheprovider', *args)
    else:
        result = _run(project, *args)
    cmp = json.loads(report_path.read_text())['baseline']
    assert cmp['session']['removed'] == [] and cmp['removed_known'] is False, result.stdout.str()
    assert 'removed' not in ''.join(line for line in result.stdout.lines if line.strip().startswith('baseline'))


def test_a_plain_test_that_fails_in_a_shard_fails_the_merged_run(
    project: EvalProject, capfire: CaptureLogfire, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each shard exits 1 for a failing plain test; the merge, the sharded run's only verdict, must too."""
    project.dataset('words', [{'name': f'c{i}', 'inputs': f'w{i}', 'expected_output': f'W{i}'} for i in range(4)])
    project.write('evals/test_words.py', SUITE.format(gate='None'))
    project.write('evals/test_plain.py', 'def test_plain_fails() -> None:\n    assert 1 == 2\n')
    reports: list[str] = []
    for index in (1, 2):
        path = f'.evaltrace/shard{index}.json'
        result = _run(project, 'evals', f'--evaltrace-shard={index}/2', f'--evaltrace-report={path}')
        assert result.ret == 1, result.stdout.str()
        reports.append(str(project.path / path))
    merged = str(project.path / 'merged.json')
    assert evaltrace_main(['merge', *reports, '-o', merged]) == 1
    data = json.loads(Path(merged).read_text())
    assert data['verdict']['word'] == 'failed'
    assert 'evals/test_plain.py::test_plain_fails' in data['other_failures']


def test_a_shard_with_no_case_writes_its_report_and_the_merge_passes(
    project: EvalProject, capfire: CaptureLogfire, capsys: pytest.CaptureFixture[str]
) -> None:
    """One case, two shards: the empty shard's report says it ran nothing, so the merge is complete."""
    project.dataset('words', [{'name': 'c0', 'inputs': 'w0', 'expected_output': 'W0'}])
    project.write('evals/test_words.py', SUITE.format(gate='None'))
    reports: list[str] = []
    for index in (1, 2):
        path = f'.evaltrace/shard{index}.json'
        _run(project, 'evals', f'--evaltrace-shard={index}/2', f'--evaltrace-report={path}')
        assert (project.path / path).is_file(), f'shard {index} wrote no report'
        reports.append(str(project.path / path))
    merged = str(project.path / 'merged.json')
    assert evaltrace_main(['merge', *reports, '-o', merged]) == 0
    data = json.loads(Path(merged).read_text())
    assert data['complete'] is True and [c['case'] for c in data['cases']] == ['c0']


UNPRICED_SUITE = """
import os

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
import evaltrace

@pytest.mark.parametrize('model', ['gpt-4o-mini', 'acme-unpriced-9000'])
@evaltrace.suite('datasets/priced.yaml', gate=evaltrace.Gate(max_cost_usd=100, max_cost_per_case_usd=100))
async def test_priced(inputs: str, model: str) -> str:
    provider = OpenAIProvider(base_url=os.environ['FAKE_OPENAI_URL'], api_key='sk-fake-key')
    agent = Agent(OpenAIChatModel(model, provider=provider))
    async with agent:
        return (await agent.run(inputs)).output
"""


def test_a_cost_gate_over_a_model_without_a_price_is_not_checked_and_fails(
    project: EvalProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # genai-prices knows gpt-4o-mini and not acme-unpriced-9000: pydantic-ai then sets no `operation.cost`, and the
    # cost summed to $0 made a cost gate pass without having checked anything.
    from tests.support.fake_openai import serve_openai

    project.dataset('priced', [{'name': 'one', 'inputs': 'hi'}])
    project.write('evals/test_priced.py', UNPRICED_SUITE)
    with serve_openai() as server:
        monkeypatch.setenv('FAKE_OPENAI_URL', server.base_url)
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider')
    assert result.ret == 6
    report = project.report()
    suites = {s['suite'].rsplit('[', 1)[-1]: s for s in report['suites']}
    priced, unpriced = suites['gpt-4o-mini]'], suites['acme-unpriced-9000]']
    assert priced['stats']['usage']['cost_usd'] > 0
    assert 'unpriced_requests' not in priced['stats']['usage']
    assert all(g['passed'] for g in priced['gates'])
    assert unpriced['stats']['usage']['unpriced_requests'] == 1
    assert unpriced['stats']['usage']['unpriced_models'] == ['acme-unpriced-9000']
    gates = {g['name']: g for g in unpriced['gates']}
    for name in ('max_cost_usd', 'max_cost_per_case_usd'):
        assert not gates[name]['passed']
        assert (
            gates[name]['detail']
            == 'not checked: 1 request counted as $0: genai-prices has no price for acme-unpriced-9000'
        )
    result.stdout.fnmatch_lines(
        [
            '*test_priced*acme-unpriced-9000*',
            '*cost $0.000000 (judge $0.000000) (1 request counted as $0: genai-prices has no price for acme-unpriced-9000)',
            '*gate max_cost_usd: FAIL*not checked: 1 request counted as $0: genai-prices has no price for acme-unpriced-9000',
        ]
    )


WHOLE_RUN_SUITES = """
import evaltrace

def all_eight(report):
    return len(report.cases) == 8

@evaltrace.suite('datasets/words.yaml', report_check=all_eight)
async def test_checked(inputs: str) -> str:
    return inputs.upper()

@evaltrace.suite('datasets/words.yaml')
async def test_plain(inputs: str) -> str:
    return inputs.upper()
"""


def test_a_suite_run_with_a_report_check_goes_to_one_shard_whole_and_its_check_holds_in_the_merge(
    project: EvalProject, capfire: CaptureLogfire
) -> None:
    # A sharded suite run's report check saw only its shard's cases: the merge could only fail it as not checked.
    cases = [{'name': f'c{i}', 'inputs': f'w{i}', 'expected_output': f'W{i}'} for i in range(8)]
    project.dataset('words', cases, ['EqualsExpected'])
    project.write('evals/test_words.py', WHOLE_RUN_SUITES)
    reports: list[str] = []
    checked: list[int] = []
    for index in (1, 2):
        path = f'.evaltrace/shard{index}.json'
        _run(project, 'evals', f'--evaltrace-shard={index}/2', f'--evaltrace-report={path}')
        data = json.loads((project.path / path).read_text())
        checked.append(sum(1 for c in data['cases'] if c['suite'].endswith('test_checked')))
        reports.append(str(project.path / path))
    assert sorted(checked) == [0, 8]  # whole, on one shard
    merged = str(project.path / 'merged.json')
    assert evaltrace_main(['merge', *reports, '-o', merged]) == 0
    gates = _gates(json.loads(Path(merged).read_text()))
    assert gates['report_check all_eight']['passed'] is True
