"""The HTML report of a real inner run: written at session end, linked from failures, usable in a real browser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evaltrace.trace.links import case_anchor
from evaltrace.views.html import CHUNK_CASES, build_html, read_page_data, write_html_safely
from tests.support.eval_project import EvalProject

SUITE = """
import evaltrace
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if len(messages) == 1:
        word = str(messages[0].parts[-1].content)
        return ModelResponse(parts=[ToolCallPart('shout', {'word': word})], usage=RequestUsage(input_tokens=50, output_tokens=7))
    result = str(messages[-1].parts[-1].content)
    return ModelResponse(parts=[TextPart(result)], usage=RequestUsage(input_tokens=80, output_tokens=9))


agent = Agent(FunctionModel(respond, model_name='fake-model'), name='shouter')


@agent.tool_plain
def shout(word: str) -> str:
    return word.upper() if word != 'word2' else 'wrong'


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    result = await agent.run(inputs)
    return result.output
"""


@pytest.fixture
def html_run(project: EvalProject) -> dict[str, Any]:
    """An inner run of 4 cases (one fails), with its JSON report, trace store and HTML report."""
    project.dataset(
        'words', [{'name': f'c{i}', 'inputs': f'word{i}', 'expected_output': f'WORD{i}'} for i in range(4)],
        evaluators=['EqualsExpected'],
    )  # fmt: skip
    project.write('evals/test_words.py', SUITE)
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    result.assert_outcomes(passed=3, failed=1)
    html = project.path / '.evaltrace' / 'report.html'
    return {'result': result, 'report': project.report(), 'html': html, 'text': html.read_text(encoding='utf-8')}


def test_failure_links_to_the_case_in_the_html_report_and_names_evaltrace_show(html_run: dict[str, Any]) -> None:
    nodeid = 'evals/test_words.py::test_words[c2]'
    failed = next(c for c in html_run['report']['cases'] if c['status'] == 'failed')
    assert failed['nodeid'] == nodeid
    assert failed['trace_url'] == f'{html_run["html"].resolve().as_uri()}#{case_anchor(nodeid)}'
    output = html_run['result'].stdout.str()
    assert f'trace: {failed["trace_url"]}' in output
    assert f"evaltrace show '{nodeid}'" in output
    index = html_run['report']['cases'].index(failed)
    chunk = read_page_data(html_run['text'])[f'et-z{index // CHUNK_CASES}']
    assert chunk['cases'][index % CHUNK_CASES]['detail']['trace_id'] == failed['trace_id']


def _traces(text: str) -> dict[str, dict[str, Any]]:
    """Each case's entry in the page's gzipped blocks (detail, spans, ...), by case name."""
    data = read_page_data(text)
    entries = [entry for key in sorted(data) if key.startswith('et-z') for entry in data[key]['cases']]
    names = [row['case'] for row in data['et-data']['cases']]
    return dict(zip(names, entries, strict=True))


def test_the_page_holds_the_waterfalls_of_cases_that_did_not_pass_and_says_how_to_see_the_others(
    html_run: dict[str, Any], project: EvalProject, browser_page: Any
) -> None:
    entries = _traces(html_run['text'])
    assert [n for n, e in entries.items() if e['spans']] == ['c2']  # the failed case only
    assert all(e.get('left_out') for n, e in entries.items() if n != 'c2')
    assert 'left_out' not in entries['c2']

    page = browser_page
    page.goto(html_run['html'].resolve().as_uri())
    page.wait_for_function('window.__evaltraceReady === true')
    page.locator('tr.case-row', has_text='c0').first.click()
    note = page.locator('.wf-left-out')
    note.wait_for()
    assert "evaltrace show 'evals/test_words.py::test_words[c0]'" in note.inner_text()
    assert 'html_traces' in note.inner_text()

    # With every trace asked for, every case has its waterfall.
    result = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider', '--evaltrace-html-traces=all')
    result.assert_outcomes(passed=3, failed=1)
    entries = _traces(html_run['html'].read_text(encoding='utf-8'))
    assert all(e['spans'] and 'left_out' not in e for e in entries.values())


def test_the_show_commands_printed_and_in_the_page_read_a_store_and_report_set_on_the_command_line(
    project: EvalProject,
) -> None:
    project.dataset(
        # The failing case's name holds a quote: the printed command must still be one word for the shell.
        'words', [{'name': ("it's c2" if i == 2 else f'c{i}'), 'inputs': f'word{i}', 'expected_output': f'WORD{i}'}
                  for i in range(4)],
        evaluators=['EqualsExpected'],
    )  # fmt: skip
    project.write('evals/test_words.py', SUITE)
    # A default run first: a command that forgot the options would read its store and print its trace.
    project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider').assert_outcomes(passed=3, failed=1)
    options = [
        '--evaltrace-store=alt/traces.duckdb',
        '--evaltrace-report=alt/report.json',
        '--evaltrace-html=alt/r.html',
    ]
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', *options)
    result.assert_outcomes(passed=3, failed=1)
    cases = {c['case']: c for c in json.loads((project.path / 'alt/report.json').read_text())['cases']}

    def shown(command: str) -> str:
        env = {**os.environ, 'PATH': f'{Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}'}
        done = subprocess.run(
            command, shell=True, cwd=project.path, capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    printed = next(line for line in result.outlines if 'see its trace: ' in line).split('see its trace: ', 1)[1]
    failed = cases["it's c2"]
    assert f'trace {failed["trace_id"]}' in shown(printed)
    meta = read_page_data((project.path / 'alt/r.html').read_text(encoding='utf-8'))['et-data']['meta']
    passing = f"evaltrace show{meta['show_options']} 'evals/test_words.py::test_words[c0]'"
    assert f'trace {cases["c0"]["trace_id"]}' in shown(passing)


def test_page_is_self_contained(html_run: dict[str, Any]) -> None:
    text = html_run['text']
    # Nothing fetched: no external script, stylesheet, image, font or frame; a CSP that forbids any fetch.
    assert not re.search(r'<(?:script|link|img|iframe)[^>]+(?:src|href)=', text)
    assert not re.search(r'url\(\s*["\']?(?:https?:)?//', text)
    assert "default-src 'none'" in text
    assert '@import' not in text


def test_browser_filters_to_failures_opens_a_case_and_draws_its_waterfall(
    html_run: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    page.goto(html_run['html'].resolve().as_uri())
    page.wait_for_function('window.__evaltraceReady === true')
    assert page.locator('tr.case-row').count() == 4
    assert page.locator('.summary-stats span').all_inner_texts()[:3] == ['4 cases', '3 passed', '1 failed']
    assert 'test_words' in page.locator('table.suites').inner_text()

    page.check('#et-failures')
    rows = page.locator('tr.case-row')
    assert rows.count() == 1
    assert 'c2' in rows.first.inner_text()

    rows.first.click()
    waterfall = page.locator('.waterfall')
    waterfall.wait_for()
    names = page.locator('.wf-row .wf-name').all_inner_texts()
    assert names[0].startswith('case test_words[c2]')  # the case's root: pydantic-evals' case span
    assert any(n.startswith('shouter run') for n in names)
    assert any(n.startswith('running tool: shout') for n in names)
    assert sum(n.startswith('chat fake-model') for n in names) == 2
    assert any('EqualsExpected' in n for n in names)
    # Model requests carry their tokens; bars are placed by start and duration.
    assert page.locator('.wf-tok').count() >= 2
    assert page.locator('.wf-bar.model').count() == 2

    page.locator('.wf-row', has_text='running tool: shout').first.click()
    detail = page.locator('.span-detail:not([hidden])').first
    assert 'Tool call shout' in detail.inner_text()
    assert 'wrong' in detail.inner_text()

    shot = tmp_path / 'waterfall.png'
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_browser_sorts_by_cost_tokens_and_duration(html_run: dict[str, Any], browser_page: Any) -> None:
    page = browser_page
    page.goto(html_run['html'].resolve().as_uri())
    page.wait_for_function('window.__evaltraceReady === true')
    cases = {c['nodeid']: c for c in html_run['report']['cases']}
    # Durations at the page's precision (0.1 ms, see `_case_row`): two cases 10 µs apart are a tie, in either order.
    for key, value in (
        ('dur', lambda c: round(c['duration_s'], 4)),
        ('tok', lambda c: c['task_usage']['input_tokens']),
    ):
        page.select_option('#et-sort', key)
        shown = page.locator('tr.case-row .muted.mono').all_inner_texts()
        values = [value(cases[n]) for n in shown]
        assert values == sorted(values, reverse=True)


def test_link_anchor_opens_its_case(html_run: dict[str, Any], browser_page: Any) -> None:
    page = browser_page
    failed = next(c for c in html_run['report']['cases'] if c['status'] == 'failed')
    page.goto(failed['trace_url'])
    page.wait_for_function('window.__evaltraceReady === true')
    page.locator('.waterfall').wait_for()
    assert page.locator('tr.case-row.open').get_attribute('id') == case_anchor(failed['nodeid'])


def test_script_breaking_text_stays_data() -> None:
    report = {
        'run_id': 'r',
        'cases': [{'nodeid': 'n</script><script>alert(1)</script>', 'status': 'failed', 'trace_id': 't',
                   'failures': ['<!-- ]]> </script>']}],
    }  # fmt: skip
    spans = {'t': [{'id': '1', 'p': -1, 'n': '</script>', 'sn': 'x', 's': 0, 'd': 1, 'k': 'span', 'l': 'info',
                    'a': {'v': '</script><b>'}}]}  # fmt: skip
    text = build_html(report, spans=spans)
    body = text.split('<body>', 1)[1]
    assert body.count('</script>') == body.count('<script')  # only the page's own blocks close
    data = read_page_data(text)
    assert data['et-z0']['cases'][0]['spans'][0]['a']['v'] == '</script><b>'
    assert data['et-data']['cases'][0]['nodeid'] == 'n</script><script>alert(1)</script>'


def test_repeated_values_are_stored_once() -> None:
    schema = {'tools': ['x' * 300]}
    spans = {
        f't{i}': [{'id': '1', 'p': -1, 'n': 'chat', 'sn': 'chat', 's': 0, 'd': 1, 'k': 'span', 'l': 'info',
                   'a': {'schema': schema, 'own': f'{i}' * 300}}]
        for i in range(3)
    }  # fmt: skip
    report = {'cases': [{'nodeid': f'n{i}', 'status': 'passed', 'trace_id': f't{i}'} for i in range(3)]}
    data = read_page_data(build_html(report, spans=spans))
    assert data['et-z0']['shared'] == [schema]
    attributes = [case['spans'][0]['a'] for case in data['et-z0']['cases']]
    assert [a['schema'] for a in attributes] == [{'__et_ref__': 0}] * 3  # each span points at the one copy
    assert [a['own'] for a in attributes] == [f'{i}' * 300 for i in range(3)]  # values seen once stay in place


def test_html_failure_is_one_warning_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / 'file'
    blocker.write_text('')

    class FakeSettings:
        html = blocker / 'report.html'  # its parent is a file: cannot be written
        report = tmp_path / 'report.json'
        baseline = tmp_path / 'baseline.json'
        store = None
        retention = 20
        scrub_patterns = ()

    warnings: list[str] = []
    write_html_safely(FakeSettings(), {'cases': []}, warnings)  # type: ignore[arg-type]
    assert len(warnings) == 1
    assert warnings[0].startswith(f'HTML report not written to {blocker / "report.html"}: ')
    assert '\n' not in warnings[0]


@pytest.fixture
def priced_html(project: EvalProject) -> Path:
    """The HTML report of a one-case run whose FunctionModel reports as gpt-4o-mini (run before the browser starts)."""
    project.dataset('words', [{'name': 'c0', 'inputs': 'word0', 'expected_output': 'WORD0'}])
    project.write('evals/test_words.py', SUITE.replace("model_name='fake-model'", "model_name='gpt-4o-mini'"))
    project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider').assert_outcomes(passed=1)
    return project.path / '.evaltrace' / 'report.html'


def test_browser_labels_the_cost_of_an_offline_model_priced_as_a_real_one(priced_html: Path, browser_page: Any) -> None:
    page = browser_page
    page.goto(priced_html.resolve().as_uri())
    page.wait_for_function('window.__evaltraceReady === true')
    assert '(offline model, priced as openai:gpt-4o-mini)' in page.locator('.summary-stats').inner_text()
    page.locator('tr.case-row').first.click()
    detail = page.locator('.detail-grid').first
    detail.wait_for()
    assert 'offline model, priced as openai:gpt-4o-mini' in detail.inner_text()
