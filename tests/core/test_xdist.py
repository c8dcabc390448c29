"""pytest-xdist parity: `-n 2` gives the same per-case results, report and exit status as a run without it."""

from __future__ import annotations

from typing import Any

from tests.support.eval_project import EvalProject

SUITE = """
import asyncio
import evaltrace

@evaltrace.suite('datasets/{name}.yaml'{options})
async def test_{name}(inputs: str) -> str:
    await asyncio.sleep(0.01)
    return inputs.upper() if not inputs.endswith('3') else 'wrong'
"""


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    cases = {
        c['nodeid']: (c['status'], c['assertions'], c['failures'], c['task_usage'], c['output'])
        for c in report['cases']
    }
    suites = {s['suite']: (s['stats']['passed'], s['stats']['failed'], s['gates']) for s in report['suites']}
    return {
        'cases': cases,
        'suites': suites,
        'gates_passed': report['session']['gates_passed'],
        'complete': report['complete'],
    }


def test_xdist_run_matches_a_plain_run(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('alpha', upper_cases(6), ['EqualsExpected'])
    project.dataset('beta', upper_cases(5), ['EqualsExpected'])
    project.write('evals/test_alpha.py', SUITE.format(name='alpha', options=''))
    project.write('evals/test_beta.py', SUITE.format(name='beta', options=', gate=evaltrace.Gate(min_pass_rate=0.9)'))
    project.write('tests/test_plain.py', 'def test_plain():\n    assert True\n')

    # The plain run in-process (as other serial-versus-xdist tests do): it spares a third interpreter that imports
    # everything again; the xdist run stays a subprocess, whose two workers are real processes either way.
    plain = project.pytester.runpytest_inprocess('evals', 'tests', '-p', 'no:cacheprovider')
    plain_report = project.report()
    (project.path / '.evaltrace/report.json').unlink()
    parallel = project.pytester.runpytest_subprocess('evals', 'tests', '-p', 'no:cacheprovider', '-n', '2')
    parallel_report = project.report()

    assert plain.ret == parallel.ret == 1  # alpha is ungated: its failing case fails the session
    # alpha's failing case; beta's failing case is gated (its own outcome), and beta's failed gate is a failure of its own
    plain.assert_outcomes(passed=10, failed=2)
    parallel.assert_outcomes(passed=10, failed=2)
    assert plain.parseoutcomes()['gated'] == parallel.parseoutcomes()['gated'] == 1
    assert _comparable(parallel_report) == _comparable(plain_report)
    assert len(parallel_report['cases']) == 11
    assert sorted(parallel_report['expected']) == sorted(plain_report['expected'])
    assert len({c['trace_id'] for c in parallel_report['cases']}) == 11
    parallel.stdout.fnmatch_lines(['*gate min_pass_rate: FAIL (actual 0.8, threshold 0.9)*'])


def test_a_plain_xdist_run_without_evals_leaves_nothing_behind(project: EvalProject) -> None:
    project.write('tests/test_plain.py', 'def test_plain():\n    assert True\n')
    result = project.pytester.runpytest_subprocess('tests', '-p', 'no:cacheprovider', '-n', '2')
    result.assert_outcomes(passed=1)
    assert 'evaltrace summary' not in result.stdout.str()
    assert not (project.path / '.evaltrace').exists()


def test_logfires_own_pytest_plugin_works_alongside(project: EvalProject, upper_cases: Any) -> None:
    project.dataset('alpha', upper_cases(4), ['EqualsExpected'])
    project.write('evals/test_alpha.py', SUITE.format(name='alpha', options=', gate=evaltrace.Gate(min_pass_rate=0.5)'))
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '--logfire')
    result.assert_outcomes(passed=3, failed=0)
    assert result.parseoutcomes()['gated'] == 1
    assert result.ret == 0
    report = project.report()
    assert len({c['trace_id'] for c in report['cases']}) == 4
    assert all(c['trace_id'] for c in report['cases'])
