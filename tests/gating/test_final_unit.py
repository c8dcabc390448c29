"""The final report as one typed value (pure): built in one pass, serialised once, read back by the one reader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evaltrace.judge.exit import EXIT_GATE_FAILED, EXIT_INCOMPLETE
from evaltrace.judge.gates import Gate
from evaltrace.report.baseline import apply_baseline, make_baseline
from evaltrace.report.decide import decide, report_verdict
from evaltrace.report.final import BaselineInput, Report, as_report, build, read_report
from evaltrace.report.merge import merge_reports
from evaltrace.report.parts import SuiteInfo
from evaltrace.results.case import CaseResult
from evaltrace.views.ci import markdown_summary
from evaltrace.views.summary import summary_lines
from tests.support.reports import SUITE, case, report

REGRESSIONS = Gate(min_pass_rate=0.5, no_assertion_regressions=True, max_cost_increase_pct=20)


def _build(cases: list[CaseResult], *, gate: Gate | None = None, baseline: BaselineInput | None = None) -> Report:
    return build(
        run_id='r2',
        started_at='2026-01-01T00:00:00+00:00',
        finished_at='2026-01-01T00:01:00+00:00',
        complete=True,
        suites=[SuiteInfo(SUITE, 'test_x', 'ds', None, gate)],
        cases=cases,
        session_gate=gate,
        expected=[c.nodeid for c in cases],
        baseline=baseline,
    )


BEFORE = [case('a', cost=0.01), case('b', cost=0.01)]
AFTER = [case('a', cost=0.01), case('b', 'failed', cost=0.02)]


def test_one_pass_gives_what_building_then_amending_gave() -> None:
    """Stats, gates, the comparison and the regression gates come out of `build` at once, as the report that was
    built, written, read back and amended used to hold them."""
    baseline = make_baseline(report(BEFORE))
    built = _build(AFTER, gate=REGRESSIONS, baseline=BaselineInput('evals/baseline.json', baseline))
    amended = apply_baseline(
        build(
            run_id='r2',
            started_at='2026-01-01T00:00:00+00:00',
            finished_at='2026-01-01T00:01:00+00:00',
            complete=True,
            suites=[SuiteInfo(SUITE, 'test_x', 'ds', None, REGRESSIONS)],
            cases=AFTER,
            session_gate=REGRESSIONS,
            expected=[c.nodeid for c in AFTER],
        ).to_json(),
        baseline,
        baseline_path='evals/baseline.json',
        session_gate=REGRESSIONS,
    )
    assert built.to_json() == amended
    [suite] = built.suites
    assert [g.name for g in suite.gates] == ['min_pass_rate', 'no_assertion_regressions', 'max_cost_increase_pct']
    assert [g.passed for g in suite.gates] == [True, False, False]
    assert not suite.passed and not built.gates_passed
    assert built.baseline is not None and built.baseline.comparison is not None
    assert built.baseline.comparison.session.newly_failing == (f'{SUITE}[b]',)
    assert decide(built).exit_status == EXIT_GATE_FAILED


def test_the_json_reads_back_to_the_same_report() -> None:
    baseline = make_baseline(report(BEFORE))
    built = _build(AFTER, gate=REGRESSIONS, baseline=BaselineInput('b.json', baseline))
    built = dataclasses.replace(built, extra={**built.extra, 'other_failures': ['tests/test_plain.py::test_plain']})
    built = built.with_verdict(decide(built))
    assert built.verdict is not None and built.verdict.reason == '1 other test(s) failed'
    data = json.loads(json.dumps(built.to_json()))
    again = Report.from_json(data)
    assert again.to_json() == data
    assert again.verdict == built.verdict == report_verdict(data)
    assert as_report(again) is again


def test_an_unusable_baseline_is_named_and_compares_nothing() -> None:
    built = _build(AFTER, gate=REGRESSIONS, baseline=BaselineInput('b.json', None, 'b.json: not a baseline'))
    assert built.to_json()['baseline'] == {'path': 'b.json', 'error': 'b.json: not a baseline'}
    assert [g.name for g in built.suites[0].gates] == ['min_pass_rate']  # no regression gate without a baseline


def test_an_unusable_baseline_is_said_in_every_summary() -> None:
    built = _build(AFTER, gate=REGRESSIONS, baseline=BaselineInput('b.json', None, 'b.json: not a baseline'))
    assert 'baseline b.json: b.json: not a baseline' in summary_lines(built)
    assert '_Baseline `b.json` not used: b.json: not a baseline_' in markdown_summary(built)


def test_a_missing_baseline_is_named_only_when_a_regression_gate_wanted_it() -> None:
    wanted = _build(AFTER, gate=REGRESSIONS, baseline=BaselineInput('b.json', None))
    assert wanted.to_json()['baseline'] == {'path': 'b.json', 'missing': True}
    assert all(g.passed and g.detail for g in wanted.suites[0].gates[1:])  # not checked, and it says so
    plain = _build(AFTER, gate=Gate(min_pass_rate=0.5), baseline=BaselineInput('b.json', None))
    assert plain.baseline is None and 'baseline' not in plain.to_json()


def test_the_one_reader_checks_the_shape_and_returns_the_typed_report(tmp_path: Path) -> None:
    path = tmp_path / 'report.json'
    built = _build(AFTER, gate=Gate(min_pass_rate=0.9))
    path.write_text(json.dumps(built.to_json()))
    read = read_report(path)
    assert isinstance(read, Report)
    assert read.to_json() == built.to_json()
    data = built.to_json()
    data['cases'][0]['status'] = 'fine'
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r'not a valid evaltrace report: cases\[0\]\.status'):
        read_report(path)


def test_a_merge_is_built_with_its_baseline_in_one_pass() -> None:
    shards = [
        ('s1', report([case('a')], shard=(1, 2), expected=[f'{SUITE}[a]'])),
        ('s2', report([case('b', 'failed')], shard=(2, 2), expected=[f'{SUITE}[b]'])),
    ]
    baseline = make_baseline(report(BEFORE))
    result = merge_reports(shards, baseline=BaselineInput('b.json', baseline))
    assert result.problems == []
    merged = result.final
    assert merged.baseline is not None and merged.baseline.comparison is not None
    assert merged.baseline.comparison.session.newly_failing == (f'{SUITE}[b]',)
    assert [g.name for g in merged.session.gates] == ['complete']
    assert result.report == merged.to_json()


def test_an_incomplete_report_names_what_it_lost() -> None:
    built = build(
        run_id='r',
        started_at='',
        finished_at=None,
        complete=False,
        suites=[SuiteInfo(SUITE, 'test_x', 'ds')],
        cases=[case('a')],
        session_gate=None,
        expected=[f'{SUITE}[a]', f'{SUITE}[b]'],
    )
    assert built.missing == [f'{SUITE}[b]']
    assert built.to_json()['missing'] == [f'{SUITE}[b]']
    assert decide(built).exit_status == EXIT_INCOMPLETE
