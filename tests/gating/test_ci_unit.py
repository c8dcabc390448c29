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
