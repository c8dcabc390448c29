"""logfire's scrubbing runs on the spans it exports; offline, the local store's own scrubbing is the only one needed.

When evaltrace configures logfire and nothing exports (no token, no OTLP endpoint), its spans reach only evaltrace's
processors, and the spool scrubs each span itself. With an exporter, foreseen or not, logfire scrubs what it sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaltrace.trace.tracing import readers_foreseen
from tests.support.eval_project import EvalProject
from tests.support.otlp_sink import otlp_sink

SUITE = """
import os

import logfire
import evaltrace


@evaltrace.suite('datasets/words.yaml')
async def test_words(inputs: str) -> str:
    logfire.info('login', password='hunter2-hunter2', remark='session notes for today')
    logfire.info('note', detail='password: "correct horse battery staple"')
    logfire.info('signed in with {api_key} as {user}', api_key='Kq7-rw2', user='ann')
    # No word logfire's own scrubbing looks for: a credential shape, and a secret environment variable's value.
    logfire.info('reply', text='use sk-proj-Abc123Def456Ghi789Jkl012 now', env=os.environ['MY_API_KEY'])
    return inputs.upper()
"""

_EXPORT_VARIABLES = ('LOGFIRE_TOKEN', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')


def _spool(project: EvalProject) -> str:
    return ''.join(p.read_text(encoding='utf-8') for p in (project.path / '.evaltrace' / 'spool').glob('*.jsonl'))


def _run(project: EvalProject, upper_cases: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _EXPORT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('MY_API_KEY', 'EnvSecretK8w3xx')
    project.dataset('words', upper_cases(2), ['EqualsExpected'])
    project.write('evals/test_words.py', SUITE)


def test_offline_the_spool_alone_scrubs_and_a_mere_mention_of_a_sensitive_word_is_kept(
    project: EvalProject, upper_cases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(project, upper_cases, monkeypatch)
    result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', timeout=60)
    result.assert_outcomes(passed=2)
    spool = _spool(project)
    assert spool.count('"span_name":"login"') == 2
    assert 'hunter2-hunter2' not in spool  # under a sensitive key: the spool's scrubber redacts it
    assert 'horse battery staple' not in spool  # a quoted value after a sensitive key goes whole
    assert spool.count('password: \\"[Scrubbed]\\"') == 2
    # A sensitive attribute's value formatted into the message goes from the message too.
    assert 'Kq7-rw2' not in spool
    assert 'sk-proj-Abc123' not in spool and 'EnvSecretK8w3xx' not in spool
    assert spool.count('"message":"signed in with [Scrubbed] as ann"') == 2
    # logfire's scrubbing, which redacts a whole value that merely mentions a sensitive word, did not run.
    assert spool.count('session notes for today') == 2


@pytest.mark.parametrize('foreseen', [True, False], ids=['foreseen', 'not foreseen'])
def test_what_logfire_exports_it_scrubs_even_when_evaltrace_did_not_foresee_the_exporter(
    project: EvalProject, upper_cases: Any, monkeypatch: pytest.MonkeyPatch, foreseen: bool
) -> None:
    _run(project, upper_cases, monkeypatch)
    if not foreseen:  # an exporter evaltrace's look at the environment misses: found once logfire is configured
        project.write(
            'conftest.py', 'import evaltrace.trace.tracing as t\n\nt.readers_foreseen = lambda environ, cwd: False\n'
        )
    with otlp_sink() as (url, bodies):
        monkeypatch.setenv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', url)
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', timeout=60)
    result.assert_outcomes(passed=2)
    sent = b''.join(bodies)
    assert sent.count(b'login') >= 2
    # What logfire's scrubbing leaves, evaltrace's scrubs before it is sent: the same as in the local store.
    for secret in (b'hunter2-hunter2', b'horse battery staple', b'Kq7-rw2', b'sk-proj-Abc123', b'EnvSecretK8w3xx'):
        assert secret not in sent, secret
    assert b'session notes for today' not in sent
    assert b"[Scrubbed due to 'session']" in sent
    assert 'session notes for today' not in _spool(project)  # the spool read the spans logfire scrubbed


def test_readers_are_foreseen_from_the_variables_the_logfire_settings_and_the_credentials_file(tmp_path: Path) -> None:
    assert not readers_foreseen({}, tmp_path)
    assert readers_foreseen({'LOGFIRE_TOKEN': 'pylf_v1_x'}, tmp_path)
    assert readers_foreseen({'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://collector:4318'}, tmp_path)
    assert readers_foreseen({'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': 'http://collector:4318/v1/traces'}, tmp_path)
    assert not readers_foreseen({'LOGFIRE_TOKEN': ''}, tmp_path)

    (tmp_path / 'pyproject.toml').write_text('[tool.evaltrace]\nretention = 3\n')
    assert not readers_foreseen({}, tmp_path)
    (tmp_path / 'pyproject.toml').write_text('[tool.logfire]\nproject_name = "x"\n')
    assert readers_foreseen({}, tmp_path)
    (tmp_path / 'pyproject.toml').write_text('[tool.logfire\n')  # unreadable: unsure means yes
    assert readers_foreseen({}, tmp_path)
    (tmp_path / 'pyproject.toml').unlink()

    (tmp_path / 'conf').mkdir()
    (tmp_path / 'conf' / 'pyproject.toml').write_text('[tool.logfire]\ntoken = "pylf_v1_x"\n')
    assert readers_foreseen({'LOGFIRE_CONFIG_DIR': 'conf'}, tmp_path)
    assert not readers_foreseen({}, tmp_path)

    (tmp_path / '.logfire').mkdir()
    (tmp_path / '.logfire' / 'logfire_credentials.json').write_text('{"token": "pylf_v1_x"}')
    assert readers_foreseen({}, tmp_path)
    assert not readers_foreseen({'LOGFIRE_DATA_DIR': 'elsewhere'}, tmp_path)


LATE_EXPORTER = """
import os

import logfire
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import evaltrace


@evaltrace.suite('datasets/words.yaml')
async def test_first(inputs: str) -> str:
    return inputs.upper()


@pytest.fixture
def late_exporter() -> None:
    # Function-scoped: this suite run starts when pytest reaches it, after evaltrace set tracing up.
    exporter = OTLPSpanExporter(endpoint=os.environ['SINK_URL'])
    logfire.DEFAULT_LOGFIRE_INSTANCE.config.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))


@evaltrace.suite('datasets/words.yaml')
async def test_second(inputs: str, late_exporter: None) -> str:
    logfire.info('login', password='hunter2-hunter2')
    logfire.info('reply', text='use sk-proj-Abc123Def456Ghi789Jkl012 now', env=os.environ['MY_API_KEY'])
    return inputs.upper()
"""


def test_an_exporter_added_after_evaltrace_set_tracing_up_sends_scrubbed_spans(
    project: EvalProject, upper_cases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaltrace wraps the exporters it finds (scrubbed copies) when it sets tracing up, and again at the session's
    end: an exporter added in between, by a fixture of a later suite, sent its spans unscrubbed until then."""
    _run(project, upper_cases, monkeypatch)
    project.write('evals/test_words.py', LATE_EXPORTER)
    with otlp_sink() as (url, bodies):
        monkeypatch.setenv('SINK_URL', url)
        result = project.pytester.runpytest_subprocess('evals', '-p', 'no:cacheprovider', timeout=60)
    result.assert_outcomes(passed=4)
    sent = b''.join(bodies)
    assert sent.count(b'login') >= 2, result.stdout.str()
    for secret in (b'hunter2-hunter2', b'sk-proj-Abc123', b'EnvSecretK8w3xx'):
        assert secret not in sent, secret
