"""A dead telemetry backend changes no verdict, keeps the report complete, and is reported in one line."""

from __future__ import annotations

import json

import pytest

from evaltrace.trace.telemetry import FLUSH_BUDGET_S
from tests.support.broken_endpoints import broken_endpoint
from tests.support.eval_project import EvalProject

SUITE = """
import evaltrace

@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    return inputs.upper() if inputs != 'word2' else 'wrong'
"""


# (mode, the exporter's own timeout in seconds, the reason the line gives). A backend that refuses, resets or
# answers 503 fails each export once the OTLP exporter has retried for its timeout: given 0.5 s, well inside the
# flush budget, the export itself fails and trips the breaker. A backend that never answers is left the exporter's
# default (10 s): the export is still in flight when the session ends, and the flush budget is what bounds the wait.
MODES = [
    ('closed', '0.5', 'export failed'),
    ('reset', '0.5', 'export failed'),
    ('503', '0.5', 'export failed'),
    ('hang', None, f'no successful export within {FLUSH_BUDGET_S:g} s'),
]


@pytest.mark.parametrize(('mode', 'exporter_timeout', 'reason'), MODES, ids=[m[0] for m in MODES])
def test_dead_backend_changes_nothing_but_one_line(
    project: EvalProject,
    upper_cases: object,
    mode: str,
    exporter_timeout: str | None,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project.dataset('words', upper_cases(4), ['EqualsExpected'])  # type: ignore[operator]
    project.write('evals/test_words.py', SUITE)
    if exporter_timeout is not None:
        monkeypatch.setenv('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', exporter_timeout)
    with broken_endpoint(mode) as url:
        monkeypatch.setenv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', url)
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', timeout=60)
    assert result.ret == 1  # word2 fails, as it does with a healthy backend
    result.assert_outcomes(passed=3, failed=1)
    statuses = {k: v['status'] for k, v in project.cases().items()}
    assert statuses == {'c0': 'passed', 'c1': 'passed', 'c2': 'failed', 'c3': 'passed'}
    assert project.report()['complete'] is True
    lines = [line for line in result.outlines if 'traces could not be sent' in line]
    assert len(lines) == 1
    assert f'({url}: {reason})' in lines[0]
    assert 'evaltrace show' in lines[0]
    assert 'report.json' in lines[0]


def test_no_message_without_a_backend(project: EvalProject, upper_cases: object) -> None:
    project.dataset('words', upper_cases(2), ['EqualsExpected'])  # type: ignore[operator]
    project.write('evals/test_words.py', SUITE)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', timeout=60)
    assert result.ret == 0
    assert 'traces could not be sent' not in result.stdout.str()


THREAD_PROBE = """
import threading

# Record each token-check thread as it starts: whether it is a daemon decides if it can hold the exit.
_started = []
_original_start = threading.Thread.start

def _recording_start(self):
    if self.name == 'check_logfire_token':
        _started.append(self.daemon)
    _original_start(self)

threading.Thread.start = _recording_start

def pytest_unconfigure(config):
    print(f'TOKEN CHECK THREADS started={len(_started)} non_daemon={_started.count(False)}')
"""


def test_a_hanging_logfire_endpoint_with_a_token_does_not_hold_the_exit(
    project: EvalProject, upper_cases: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.dataset('words', upper_cases(4), ['EqualsExpected'])  # type: ignore[operator]
    project.write('evals/test_words.py', SUITE)
    project.write('evals/conftest.py', THREAD_PROBE)
    # Under CI=true with a token, logfire's own pytest plugin enables itself and exports test-phase spans through
    # an instance of its own, which evaltrace does not bound; this test is about evaltrace's configure().
    monkeypatch.delenv('CI', raising=False)
    with broken_endpoint('hang') as url:
        monkeypatch.setenv('LOGFIRE_TOKEN', 'pylf_v1_us_' + 'x' * 40)
        monkeypatch.setenv('LOGFIRE_BASE_URL', url.removesuffix('/v1/traces'))
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-s', timeout=60)
    assert result.ret == 1
    statuses = {k: v['status'] for k, v in project.cases().items()}
    assert statuses == {'c0': 'passed', 'c1': 'passed', 'c2': 'failed', 'c3': 'passed'}
    assert len([line for line in result.outlines if 'traces could not be sent' in line]) == 1
    # logfire's token check still hangs on the endpoint, but as a daemon thread it cannot hold the exit.
    [probe] = [line for line in result.outlines if 'TOKEN CHECK THREADS' in line]
    assert 'started=0' not in probe
    assert probe.endswith('non_daemon=0')


WRITE_TOKEN = 'pylf_v1_us_' + 'Tq7Wm2Xc9Lp4' * 4


def test_an_unreachable_logfire_api_under_filterwarnings_error_changes_no_verdict_and_shows_no_token(
    project: EvalProject, upper_cases: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logfire's token check warns from its own thread that the API is unreachable; under `filterwarnings = error`
    that warning is an exception in the thread, which pytest turns into a failure of the running test."""
    project.dataset('words', upper_cases(2), ['EqualsExpected'])  # type: ignore[operator]
    project.write('evals/test_words.py', SUITE.replace("inputs != 'word2'", 'True'))
    project.write('pyproject.toml', '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n')
    monkeypatch.delenv('CI', raising=False)
    monkeypatch.delenv('LOGFIRE_TOKEN', raising=False)
    with broken_endpoint('closed') as url:
        api = url.removesuffix('/v1/traces')
        credentials = {'token': WRITE_TOKEN, 'project_name': 'p', 'project_url': 'https://x/p', 'logfire_api_url': api}
        project.write('.logfire/logfire_credentials.json', json.dumps(credentials))
        result = project.pytester.runpytest_subprocess(
            'evals', '-p', 'no:cacheprovider', '--junitxml=junit.xml', timeout=60
        )
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    junit = (project.path / 'junit.xml').read_text(encoding='utf-8')
    for where, text in (('terminal', result.stdout.str() + result.stderr.str()), ('junit', junit)):
        assert WRITE_TOKEN not in text, where


USER_CONFIGURE = """
import logfire

logfire.configure(
    token='{token}', send_to_logfire=True, console=False, advanced=logfire.AdvancedOptions(base_url='{api}')
)
"""


def test_a_token_check_started_by_the_users_own_configure_in_a_conftest_changes_no_exit_status(
    project: EvalProject, upper_cases: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conftest that pytest loads before the session (`evals/conftest.py` under `pytest evals/`) configures
    logfire itself: its token check's warning, an exception in its thread under `-W error`, made pytest exit 1
    while the verdict and the report said 0."""
    project.dataset('words', upper_cases(1), ['EqualsExpected'])  # type: ignore[operator]
    slow = 'import asyncio\n' + SUITE.replace('    return', '    await asyncio.sleep(3)\n    return')
    project.write('evals/test_words.py', slow.replace("inputs != 'word2'", 'True'))
    monkeypatch.delenv('CI', raising=False)
    monkeypatch.delenv('LOGFIRE_TOKEN', raising=False)
    with broken_endpoint('late reset') as url:  # the check fails a second in, while the case runs
        project.write('evals/conftest.py', USER_CONFIGURE.format(token=WRITE_TOKEN, api=url.removesuffix('/v1/traces')))
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', '-W', 'error', timeout=60)
    output = result.stdout.str() + result.stderr.str()
    assert 'verdict: passed (exit status 0)' in output
    assert result.ret == 0, output
    assert WRITE_TOKEN not in output
