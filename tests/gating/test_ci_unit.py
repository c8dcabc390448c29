"""The markdown summary and the GitHub Actions annotations, from report data (pure)."""

from __future__ import annotations

from evaltrace.judge.gates import Gate
from evaltrace.report.baseline import apply_baseline, make_baseline
from evaltrace.views.ci import github_annotations, markdown_summary, verdict
from tests.support.reports import case, report


def test_markdown_has_suites_gates_deltas_and_failed_cases_with_links() -> None:
    baseline = make_baseline(report([case('a', score=0.9), case('b', score=0.9)]))
    data = report([case('a', score=0.9), case('b', 'failed', score=0.5)], gate=Gate(min_pass_rate=0.9))
    apply_baseline(data, baseline, baseline_path='evals/baseline.json', session_gate=None)
    text = markdown_summary(data)
    assert text.startswith('## ❌ evaltrace: gate failed\n')
    assert '| evals/test_x.py::test_x | 1 | 1 | 0 | 50.0% | 50.0% |' in text
    assert '| evals/test_x.py::test_x | min_pass_rate | 0.9 | 0.5 | ❌ fail |' in text
    assert '### Against the baseline (`evals/baseline.json`)' in text
    assert '| evals/test_x.py::test_x | score quality | 0.900 | 0.700 | -0.200 |' in text
    assert '**Newly failing (1):** `evals/test_x.py::test_x[b]`' in text
    assert '- **b** in `evals/test_x.py::test_x` (failed): b went wrong - [trace](https://example.test/trace/b)' in text


def test_one_error_annotation_per_failing_case_with_its_link_escaped() -> None:
    failing = case('b, "odd": 100%', 'failed')
    failing.failures = ['line one\nline two']
    data = report([case('a'), failing, case('c', 'error')], gate=Gate(max_errors=0))
    lines = github_annotations(data)
    case_lines = [line for line in lines if 'title=eval case' in line]
    assert len(case_lines) == 2
    first = case_lines[0]
    assert first.startswith('::error file=evals/test_x.py,title=eval case failed%3A b%2C "odd"%3A 100%25::')
    assert 'line one%0Aline two' in first
    assert first.endswith('%0Atrace: https://example.test/trace/b, "odd": 100%25')
    assert [line for line in lines if 'gate failed' in line] == [
        '::error title=evaltrace gate failed%3A max_errors::evals/test_x.py::test_x: max_errors actual 1, threshold 0'
    ]


def test_runs_of_a_case_passing_k_of_n_are_not_annotated() -> None:
    runs = [case('a', 'passed', repeat=1, repeats=2), case('a', 'failed', repeat=2, repeats=2)]
    data = report(runs, pass_k=1, repeat=2)
    assert github_annotations(data) == []
    assert verdict(data) == 'passed'
    assert '### Flaky cases' in markdown_summary(data)


def test_every_output_words_the_cost_note_and_changed_cases_alike() -> None:
    # The markdown summary showed the cost without what it leaves out, said "Changed inputs" where the terminal says
    # what changed means, and the terminal, gates and HTML each worded unpriced requests their own way.
    from evaltrace.views.summary import baseline_lines, summary_lines

    baseline = make_baseline(report([case('a', cost=0.01), case('b', cost=0.01)]))
    unpriced = case('a', cost=0.01)
    unpriced.task_usage.unpriced_requests = 2
    unpriced.task_usage.unpriced_models = frozenset({'acme-9'})
    unpriced.task_usage.offline_priced_as = frozenset({'openai:gpt-4o-mini'})
    data = report([unpriced, case('b', cost=0.01, inputs_hash='edited')], gate=Gate(max_cost_usd=1.0))
    apply_baseline(data, baseline, baseline_path='b.json', session_gate=None)
    note = 'offline model, priced as openai:gpt-4o-mini; 2 requests counted as $0: genai-prices has no price for acme-9'
    assert data['session']['stats']['usage']['cost_note'] == note
    assert data['cases'][0]['task_usage']['cost_note'] == note
    assert 'cost_note' not in data['cases'][1]['task_usage']
    [gate] = data['suites'][0]['gates']
    assert gate['detail'] == 'not checked: 2 requests counted as $0: genai-prices has no price for acme-9'
    assert any(line.endswith(f'cost $0.020000 ({note})') for line in summary_lines(data))
    text = markdown_summary(data)
    assert f'| $0.020000 ({note}) |' in text
    changed = 'changed (inputs or expected output differ), not compared (1):'
    assert any(line.strip().startswith(changed) for line in baseline_lines(data['baseline']))
    assert f'**{changed.capitalize()}** `evals/test_x.py::test_x[b]`' in text
