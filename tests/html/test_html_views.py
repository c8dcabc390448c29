"""The HTML report's views in a real browser, on two real inner runs compared with a baseline: the verdict header,
the case list with score and assertion columns, a waterfall in tree order, the trends and the comparison.

Screenshots of each view are written to `$SCREENSHOTS_DIR` when set (to look at them; not an `EVALTRACE_` name, which inner runs never see), else to tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic_evals.reporting.analyses import (
    ConfusionMatrix,
    LinePlot,
    LinePlotCurve,
    PrecisionRecall,
    PrecisionRecallCurve,
    PrecisionRecallPoint,
    ScalarResult,
    TableResult,
)

from evaltrace import Gate
from evaltrace.cli import main as evaltrace_main
from evaltrace.views.html import build_html
from tests.support.eval_project import EvalProject
from tests.support.reports import case, report

SUITE = """
import asyncio
from dataclasses import dataclass
from pathlib import Path

import logfire
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import EqualsExpected, Evaluator, EvaluatorContext

import evaltrace


PRICED = {'model_name': 'gpt-4o-mini', 'provider_name': 'openai'}  # priced by genai-prices: the cases cost something


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if len(messages) == 1:
        word = str(messages[0].parts[-1].content)
        usage = RequestUsage(input_tokens=50 * len(word), output_tokens=7)
        return ModelResponse(parts=[ToolCallPart('shout', {'word': word})], usage=usage, **PRICED)
    result = str(messages[-1].parts[-1].content)
    return ModelResponse(parts=[TextPart(result)], usage=RequestUsage(input_tokens=80, output_tokens=9), **PRICED)


agent = Agent(FunctionModel(respond, model_name='gpt-4o-mini'), name='shouter')
BROKEN = Path('broken.txt').read_text().strip()  # the word the tool gets wrong in this run


@agent.tool_plain
def shout(word: str) -> str:
    return word.upper() if word != BROKEN else 'wrong'


@dataclass
class SlowJudge(Evaluator):
    # Starts first, and opens its own span after the next evaluator has started: start order is not tree order.
    async def evaluate(self, ctx: EvaluatorContext) -> float:
        await asyncio.sleep(0.05)
        with logfire.span('judge_output run'):
            await asyncio.sleep(0.001)
        return 1.0 if ctx.output == ctx.expected_output else 0.25


@dataclass
class Quick(Evaluator):
    async def evaluate(self, ctx: EvaluatorContext) -> bool:
        await asyncio.sleep(0.001)
        return True


names = Path('cases.txt').read_text().split()
dataset = Dataset(
    name='words',
    cases=[Case(name=n, inputs=f'word{n[1:]}', expected_output=f'WORD{n[1:]}') for n in names],
    evaluators=[SlowJudge(), Quick(), EqualsExpected()],
)


@evaltrace.suite(dataset, gate=evaltrace.Gate(min_pass_rate=0.5))
async def test_words(inputs: str) -> str:
    result = await agent.run(inputs)
    return result.output
"""


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get('SCREENSHOTS_DIR') or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def two_runs(project: EvalProject, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run 1 (c2 fails), its baseline saved, then run 2 (c3 fails, c2 fixed, c4 new, c0 removed); under a gate."""
    project.write('evals/test_words.py', SUITE)
    project.write('broken.txt', 'word2')
    project.write('cases.txt', 'c0 c1 c2 c3')
    first = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert first.ret == 0  # one failing case, but the gate (pass rate >= 0.5) passes
    monkeypatch.chdir(project.path)
    assert evaltrace_main(['baseline', 'save']) == 0
    project.write('broken.txt', 'word3')
    project.write('cases.txt', 'c1 c2 c3 c4')
    second = project.pytester.runpytest_inprocess('evals', '-p', 'no:cacheprovider')
    assert second.ret == 0
    html = project.path / '.evaltrace' / 'report.html'
    return {'report': project.report(), 'html': html}


def _open(page: Any, html: Path) -> None:
    page.goto(html.resolve().as_uri())
    page.wait_for_function('window.__evaltraceReady === true')


def test_waterfall_is_the_span_tree_and_messages_are_shown_once(
    two_runs: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, two_runs['html'])
    page.locator('tr.case-row', has_text='c3').first.click()
    page.locator('.waterfall .wf-row').first.wait_for()
    names = [n.strip() for n in page.locator('.wf-row .wf-name').all_inner_texts()]
    judge = next(i for i, n in enumerate(names) if 'SlowJudge' in n)
    assert names[judge + 1] == 'judge_output run'  # its child, right under it, not under the evaluator after it
    depth = page.locator('.wf-row .wf-name').evaluate_all('els => els.map(e => parseInt(e.style.paddingLeft))')
    assert depth[judge + 1] > depth[judge]
    quick = next(i for i, n in enumerate(names) if 'Quick' in n)
    assert depth[quick] == depth[judge]
    page.screenshot(path=str(_shots(tmp_path) / 'waterfall.png'), full_page=True)

    # The second model request shows the conversation once: as messages, not again as raw attributes.
    page.locator('.wf-row', has_text='chat gpt-4o-mini').nth(1).click()
    detail = page.locator('.span-detail:not([hidden])').first
    text = detail.inner_text()
    assert 'Input messages' in text
    assert text.count('"word": "word3"') == 1  # the tool call's arguments, once
    page.screenshot(path=str(_shots(tmp_path) / 'span-detail.png'), full_page=True)


def test_verdict_header_shows_a_passing_gate_with_a_tolerated_failure_and_case_columns(
    two_runs: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, two_runs['html'])
    header = page.locator('#et-verdict')
    assert header.get_attribute('data-verdict') == 'passed'
    assert 'v-passed' in (header.get_attribute('class') or '')
    text = header.inner_text()
    assert text.startswith('Passed')
    assert '1 failing case under gates, tolerated by them' in text
    assert 'min_pass_rate: PASS (actual 0.75, threshold 0.5)' in text
    failed = header.locator('.summary-stats span', has_text='failed')
    assert failed.inner_text() == '1 failed'
    assert failed.get_attribute('class') == 'tolerated'  # not the red of a failed run

    heads = page.locator('table.cases thead th').all_inner_texts()
    assert heads[:4] == ['status', 'case', 'assertions', 'SlowJudge']
    row = page.locator('tr.case-row', has_text='c3')
    assert row.locator('td.assertions').inner_text().strip().endswith('1/2')
    assert row.locator('.chips i.n').get_attribute('title') == 'EqualsExpected ✗'
    assert row.locator('td.score').inner_text().strip() == '0.25'
    page.select_option('#et-sort', 's0')  # by the SlowJudge score, highest first
    shown = page.locator('tr.case-row .case-name').all_inner_texts()
    assert shown[-1] == 'c3'
    page.screenshot(path=str(_shots(tmp_path) / 'case-list.png'), full_page=True)


def test_trends_draw_each_suite_over_the_kept_runs(two_runs: dict[str, Any], browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    _open(page, two_runs['html'])
    assert page.locator('#view-trends').inner_html() == ''  # drawn when first shown, not at load
    page.click('.tab[data-tab=trends]')
    trend = page.locator('section.trend[data-suite="evals/test_words.py::test_words"]')
    captions = trend.locator('figcaption').all_inner_texts()
    assert captions == ['pass rate', 'score averages', 'cost (USD)']
    pass_rate = trend.locator('figure').first
    # Two runs, two series (cases and assertions): a point per run each, with the run in its tooltip.
    assert pass_rate.locator('circle.pt').count() == 4
    tips = pass_rate.locator('circle.pt title').all_text_contents()
    assert tips[0].startswith('cases: 75%') and tips[1].startswith('cases: 75%')
    # Every axis label lies inside its chart: the first and last run's times are not cut at the edges.
    for chart in trend.locator('svg.chart').all():
        box = chart.bounding_box()
        assert box is not None
        for tick in chart.locator('text.tick').all():
            t = tick.bounding_box()
            assert t is not None and box['x'] - 0.5 <= t['x'] and t['x'] + t['width'] <= box['x'] + box['width'] + 0.5
    page.screenshot(path=str(_shots(tmp_path) / 'trends.png'), full_page=True)


def test_comparison_view_lists_regressed_improved_new_and_removed_with_deltas(
    two_runs: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, two_runs['html'])
    page.click('.tab[data-tab=comparison]')
    tiles = dict(
        t.split(' ', 1)[::-1] for t in page.locator('.tiles .tile').all_inner_texts() for t in [t.replace('\n', ' ')]
    )
    assert tiles == {'regressed': '1', 'improved': '1', 'new': '1', 'removed': '1', 'changed': '0'}
    assert (
        page.locator('#cmp-changed h3').inner_text() == 'Changed (inputs or expected output differ), not compared (0)'
    )
    regressed = page.locator('#cmp-regressed tbody tr')
    assert regressed.count() == 1
    row = regressed.first.inner_text()
    assert 'c3' in row and 'passed → failed' in row
    assert '✗ EqualsExpected' in row and 'SlowJudge 1 → 0.25' in row
    improved = page.locator('#cmp-improved tbody tr').first.inner_text()
    assert 'c2' in improved and 'failed → passed' in improved and 'SlowJudge 0.25 → 1' in improved
    assert 'test_words[c4]' in page.locator('#cmp-new').inner_text()
    assert 'test_words[c0]' in page.locator('#cmp-removed').inner_text()
    assert 'pass rate' in page.locator('table.cmp-suites').inner_text()
    page.screenshot(path=str(_shots(tmp_path) / 'comparison.png'), full_page=True)
    # A case of the lists opens in the case list.
    page.locator('#cmp-regressed a', has_text='c3').click()
    page.locator('tr.case-row.open .case-name', has_text='c3').wait_for()
    assert page.locator('#view-cases').is_visible()


def test_distributions_draw_scores_cost_and_duration(
    two_runs: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, two_runs['html'])
    page.click('.tab[data-tab=distributions]')
    section = page.locator('section.dist').first
    captions = section.locator('figcaption').all_inner_texts()
    assert captions[0] == 'score SlowJudge (4 cases)'
    assert section.locator('figure').first.locator('rect.bar').count() == 10
    assert section.locator('circle.dot').count() == 4
    assert section.locator('circle.dot.failed').count() == 1
    page.screenshot(path=str(_shots(tmp_path) / 'distributions.png'), full_page=True)
    section.locator('circle.dot.failed').dispatch_event('click')  # dots of close durations may overlap
    page.locator('tr.case-row.open .case-name', has_text='c3').wait_for()


# pydantic-evals' report analyses as `ReportAnalysis.model_dump()` gives them, on the suite runs of a parametrized
# suite; the report is made by `build` from hand-made case results, so this runs without an inner session.
CONFUSION = ConfusionMatrix(class_labels=['refund', 'shipping', 'other'], matrix=[[5, 1, 0], [0, 7, 2], [1, 0, 4]])
PRECISION_RECALL = PrecisionRecall(
    curves=[
        PrecisionRecallCurve(
            name='judge',
            auc=0.81,
            points=[PrecisionRecallPoint(threshold=t / 4, precision=0.6 + t / 10, recall=1 - t / 4) for t in range(5)],
        )
    ]
)
ANALYSES = [
    CONFUSION.model_dump(),
    PRECISION_RECALL.model_dump(),
    ScalarResult(title='F1', value=0.84).model_dump(),
    TableResult(
        title='Per class', columns=['class', 'precision'], rows=[['refund', 0.83], ['other', 0.67]]
    ).model_dump(),
    LinePlot(title='ROC', x_label='FPR', y_label='TPR', curves=[LinePlotCurve(name='judge', points=[])]).model_dump(),
]


@pytest.fixture
def analyses_page(tmp_path: Path) -> Path:
    """A page of two suite runs of one suite function, the first with analyses, a repeated flaky case, and a gate
    that failed."""
    runs = ['evals/test_x.py::test_x[True]', 'evals/test_x.py::test_x[False]']
    cases = [case('a', suite=runs[0], score=0.9), case('b', 'failed', suite=runs[0], score=0.2)]
    cases += [case('f', 'passed' if r < 2 else 'failed', suite=runs[1], repeat=r, repeats=3) for r in range(3)]
    data = report(cases, gate=Gate(min_pass_rate=0.9), pass_k=2, repeat=3)
    suite_run = next(s for s in data['suites'] if s['suite'] == runs[0])
    suite_run['experiment'] = {'name': 'test_x', 'analyses': ANALYSES, 'metric_averages': {'retries': 1.5},
                               'report_evaluator_failures': [{'name': 'KS', 'error_message': 'ValueError: no scores'}]}  # fmt: skip
    data['cancelled'], data['not_started'] = [f'{runs[1]}[g]'], [f'{runs[1]}[h]', f'{runs[1]}[i]']  # -x stopped it
    page = tmp_path / 'analyses.html'
    page.write_text(build_html(data), encoding='utf-8')
    return page


def test_suite_runs_and_their_analyses_are_drawn_as_what_they_are(
    analyses_page: Path, browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, analyses_page)
    header = page.locator('#et-verdict')
    assert header.get_attribute('data-verdict') == 'gate failed'
    assert header.inner_text().startswith('Gate failed')
    assert '1 of 2 gates failed · 1 failing case under gates' in header.inner_text()  # f passes 2 of 3: k-of-n
    assert '1 case cancelled while running · 2 cases never started' in header.inner_text()

    # The suite function heads its two suite runs.
    assert page.locator('tr.suite-fn').inner_text().startswith('test_x')
    assert [r.strip() for r in page.locator('tr.suite-run td:first-child a.suite-link').all_inner_texts()] == [
        '[False]',  # in the report's order
        '[True]',
    ]
    section = page.locator('section.suite-analyses[data-suite="evals/test_x.py::test_x[True]"]')
    matrix = section.locator('table.confusion')
    cells = [[int(v) for v in row.locator('td').all_inner_texts()] for row in matrix.locator('tr').all()[1:]]
    assert cells == CONFUSION.matrix  # matrix[expected][predicted], one row per expected class
    assert matrix.locator('tr').first.locator('th').all_inner_texts()[1:] == CONFUSION.class_labels
    assert matrix.locator('td.diag').count() == 3
    curve = section.locator('.a-precision_recall svg path.series')
    assert curve.count() == 1 and (curve.get_attribute('d') or '').count('L') == 4
    assert 'AUC 0.81' in section.locator('.a-precision_recall .legend').inner_text()
    assert section.locator('.a-scalar .scalar').inner_text() == '0.84'
    assert section.locator('.a-table td').all_inner_texts() == ['refund', '0.83', 'other', '0.67']
    assert 'no data' in section.locator('.a-line_plot').inner_text()  # an empty curve says so, never breaks the page
    assert 'report evaluator KS raised: ValueError: no scores' in section.inner_text()
    assert 'retries 1.5 (metric)' in page.locator('tr[data-suite="evals/test_x.py::test_x[True]"]').inner_text()
    link = page.locator('tr[data-suite="evals/test_x.py::test_x[True]"] a.analyses-link')
    assert link.inner_text() == '5 analyses, 1 failed report evaluator'  # what is drawn, and what raised
    page.screenshot(path=str(_shots(tmp_path) / 'analyses.png'), full_page=True)

    page.click('.tab[data-tab=distributions]')
    flaky = page.locator('section.dist[data-suite="evals/test_x.py::test_x[False]"] table.flaky tbody tr')
    assert flaky.count() == 1
    assert '2/3' in flaky.inner_text() and '67%' in flaky.inner_text()
    page.screenshot(path=str(_shots(tmp_path) / 'flaky.png'), full_page=True)
