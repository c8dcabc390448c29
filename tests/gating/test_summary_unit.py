"""The terminal summary's comparison with the baseline (pure): readable lines, bounded lists."""

from __future__ import annotations

from evaltrace.report.baseline import apply_baseline, make_baseline
from evaltrace.views.summary import MAX_LINE, MAX_LISTED, baseline_lines
from tests.support.reports import case, report

SUITE = 'evals/test_support_agent_with_a_long_name.py::test_support_agent_with_a_long_name'


def _compared(n_added: int, evaluators: int = 12) -> dict[str, object]:
    def run(names: list[str], ok: bool) -> dict[str, object]:
        data = report([case(n, suite=SUITE, score=0.5 if ok else 0.4, cost=0.001) for n in names])
        for c in data['cases']:  # many evaluators: one long line per suite today
            c['assertions'] = {f'Evaluator{k}_checks_something': {'value': ok or k % 2} for k in range(evaluators)}
        return report_again(data)

    before = run(['kept', *[f'gone_{i}' for i in range(n_added)]], True)
    after = run(['kept', *[f'new_case_number_{i}' for i in range(n_added)]], False)
    return apply_baseline(after, make_baseline(before), baseline_path='evals/baseline.json', session_gate=None)


def report_again(data: dict[str, object]) -> dict[str, object]:
    # Rebuild the stats from the edited cases, as a run would have.
    from evaltrace.results.case import CaseResult

    return report([CaseResult.from_dict(c) for c in data['cases']])  # type: ignore[union-attr]


def test_comparison_lines_are_wrapped_to_a_readable_width() -> None:
    lines = baseline_lines(_compared(2)['baseline'])  # type: ignore[arg-type]
    assert lines[0].startswith('baseline evals/baseline.json (run ')
    assert all(len(line) <= MAX_LINE for line in lines), max(lines, key=len)
    text = '\n'.join(lines)
    # Nothing is lost to the wrapping: every evaluator's delta, the score and the cost are there.
    for k in range(12):
        assert f'Evaluator{k}_checks_something ' in text
    assert 'score quality 0.500 -> 0.400 (-0.100)' in text
    assert 'cost $0.001000 -> $0.001000' in text
    assert 'pass rate ' in text and ' pts)' in text.split('pass rate ', 1)[1].split(';', 1)[0]  # the suite's pass rate
    assert f'    {SUITE} (1 compared):' in lines


def test_added_and_removed_lists_are_bounded_with_a_count_of_the_rest() -> None:
    lines = baseline_lines(_compared(40)['baseline'])  # type: ignore[arg-type]
    text = '\n'.join(lines)
    assert all(len(line) <= MAX_LINE for line in lines), max(lines, key=len)
    assert f'{SUITE}[new_case_number_{MAX_LISTED - 1}]' in text
    assert f'[new_case_number_{MAX_LISTED}]' not in text
    assert f'… and {40 - MAX_LISTED} more' in text
    assert text.count('… and 30 more') == 2  # added, and removed
    assert '    added (40):' in text
    assert '    removed (40):' in text


def test_a_delta_with_nothing_measured_shows_a_dash() -> None:
    # Printed 'None -> None' where a run measured nothing (no assertion ran: every case errored).
    baseline = make_baseline(report([case('a', 'error'), case('b', score=0.5)]))
    now = report([case('a', 'error'), case('b')])
    lines = baseline_lines(apply_baseline(now, baseline, baseline_path='b.json', session_gate=None)['baseline'])
    text = '\n'.join(lines)
    assert 'None' not in text
    assert 'assertions 100.0% -> 100.0% (+0.0 pts)' in text
    assert 'Equals 100.0% -> 100.0% (+0.0 pts)' in text
    assert 'score quality - -> -' in text  # b ran without the score now: not compared, nothing measured
    only_errors = report([case('a', 'error')])
    lines = baseline_lines(
        apply_baseline(only_errors, make_baseline(only_errors), baseline_path='b.json', session_gate=None)['baseline']
    )
    assert 'assertions - -> -' in '\n'.join(lines)
