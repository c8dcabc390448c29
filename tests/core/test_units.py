"""Pure logic: settings precedence, trace links, usage sums, scrubbing of eval content."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evaltrace.results.usage import Usage, usage_of_span
from evaltrace.settings.resolve import resolve_values
from evaltrace.settings.table import SETTINGS
from evaltrace.settings.values import Settings
from evaltrace.trace.links import LinkTarget, logfire_trace_url, project_url_from_credentials, template_trace_url

TRACE = '0123456789abcdef0123456789abcdef'
SPAN = '0123456789abcdef'


def test_precedence_is_cli_then_env_then_ini_then_pyproject_then_default() -> None:
    table = {'max_concurrency': 3, 'service_name': 'from-pyproject', 'environment': 'pyproject-env'}
    ini = {'max_concurrency': '4', 'service_name': 'from-ini'}
    env = {'EVALTRACE_MAX_CONCURRENCY': '5'}
    cli = {'max_concurrency': '6'}
    values, sources = resolve_values(cli, env, ini, table)
    assert values['max_concurrency'] == 6 and sources['max_concurrency'] == 'option --evaltrace-max-concurrency'
    values, sources = resolve_values({}, env, ini, table)
    assert (
        values['max_concurrency'] == 5
        and sources['max_concurrency'] == 'environment variable EVALTRACE_MAX_CONCURRENCY'
    )
    assert values['service_name'] == 'from-ini'
    assert values['environment'] == 'pyproject-env'
    assert values['report'] == Path('.evaltrace/report.json') and sources['report'] == 'default'


@pytest.mark.parametrize(
    ('name', 'raw', 'message'),
    [
        ('max_concurrency', '0', 'expected a whole number >= 1'),
        ('record', 'sometimes', 'expected one of off, none, once, new, all'),
        ('shard', '3/2', 'expected i/n with 1 <= i <= n'),
        ('instrument_httpx', 'maybe', 'expected true or false'),
    ],
)
def test_bad_values_name_the_setting_and_its_source(name: str, raw: str, message: str) -> None:
    with pytest.raises(pytest.UsageError, match=f'bad value for {name} from \\[tool.evaltrace\\] {name}: {message}'):
        resolve_values({}, {}, {}, {name: raw})


def test_settings_holds_one_field_per_declared_setting_in_order() -> None:
    names = [f.name for f in dataclasses.fields(Settings)]
    assert names == [s.name for s in SETTINGS] + ['gate', 'rootdir', 'sources']


def test_logfire_link_is_a_url_encoded_where_clause() -> None:
    url = logfire_trace_url('https://logfire-us.pydantic.dev/acme/evals/', TRACE)
    assert url == f'https://logfire-us.pydantic.dev/acme/evals?q=trace_id%3D%27{TRACE}%27'


def test_template_link_fills_trace_and_span_ids() -> None:
    url = template_trace_url('http://127.0.0.1:16686/trace/{trace_id}?uiFind={span_id}', TRACE, SPAN)
    assert url == f'http://127.0.0.1:16686/trace/{TRACE}?uiFind={SPAN}'


def test_link_precedence_template_then_project_then_local(tmp_path: Path) -> None:
    both = LinkTarget(template='http://jaeger/{trace_id}', project_url='https://lf/p', local_report=None)
    assert both.url(TRACE, SPAN) == f'http://jaeger/{TRACE}'
    project = LinkTarget(template=None, project_url='https://lf/p', local_report=tmp_path / 'r.html')
    assert project.url(TRACE, SPAN) == f'https://lf/p?q=trace_id%3D%27{TRACE}%27'
    local = LinkTarget(template=None, project_url=None, local_report=tmp_path / 'r.html')
    assert local.url(TRACE, SPAN, anchor='case-1') == (tmp_path / 'r.html').as_uri() + '#case-1'
    assert LinkTarget(template=None, project_url=None, local_report=None).url(TRACE, SPAN) is None


def test_project_url_comes_from_logfire_credentials(tmp_path: Path) -> None:
    assert project_url_from_credentials(tmp_path) is None
    (tmp_path / 'logfire_credentials.json').write_text(json.dumps({'token': 'x', 'project_url': 'https://lf/acme/p'}))
    assert project_url_from_credentials(tmp_path) == 'https://lf/acme/p'
    (tmp_path / 'logfire_credentials.json').write_text('{broken')
    assert project_url_from_credentials(tmp_path) is None


def test_only_model_request_spans_count_as_usage() -> None:
    request = {
        'gen_ai.operation.name': 'chat',
        'gen_ai.usage.input_tokens': 10,
        'gen_ai.usage.output_tokens': 2,
        'operation.cost': 0.5,
    }
    agent_run = {'gen_ai.operation.name': 'invoke_agent', 'gen_ai.usage.input_tokens': 10}
    assert usage_of_span(request) == Usage(1, 10, 2, 0.5)
    assert usage_of_span(agent_run) is None
    assert usage_of_span({'http.method': 'POST'}) is None


def test_scrubbing_keeps_eval_content_that_only_mentions_a_sensitive_word() -> None:
    import re

    import logfire

    from evaltrace.trace.tracing import keep_eval_content

    def match(path: tuple[str, ...], value: str, word: str) -> logfire.ScrubMatch:
        string = path[-1] if word in path[-1] else value  # a key match, or a value match
        found = re.search(word, string)
        assert found is not None
        return logfire.ScrubMatch(path=path, value=value, pattern_match=found)

    nodeid = 'evals/test_triage.py::test_triage[password_reset]'
    assert keep_eval_content(match(('attributes', 'nodeid'), nodeid, 'password')) == nodeid
    assert keep_eval_content(match(('message', 'case'), 'test_triage[password_reset]', 'password')) is not None
    leaked = 'my key is sk-abcdefghijklmnopqrstuvwx, auth ok'
    assert keep_eval_content(match(('attributes', 'output'), leaked, 'auth')) is None
    assert keep_eval_content(match(('attributes', 'http.request.header.authorization'), 'x', 'auth')) is None
    assert keep_eval_content(match(('attributes', 'password'), 'hunter2', 'password')) is None


def test_an_offline_model_under_a_priced_name_is_labelled_as_such() -> None:
    offline = {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'function',
        'gen_ai.response.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 10,
        'gen_ai.usage.output_tokens': 2,
        'operation.cost': 0.5,
    }
    usage = usage_of_span(offline)
    assert usage is not None and usage.offline_priced_as == frozenset({'openai:gpt-4o-mini'})
    assert usage.cost_note == usage.to_dict()['cost_note'] == 'offline model, priced as openai:gpt-4o-mini'
    real = usage_of_span({**offline, 'gen_ai.provider.name': 'openai'})
    unpriced = usage_of_span({**offline, 'operation.cost': 0, 'gen_ai.response.model': 'offline-x'})
    assert real is not None and unpriced is not None
    assert not real.offline_priced_as and not unpriced.offline_priced_as
    assert 'offline_priced_as' not in real.to_dict() and real.cost_note == '' and 'cost_note' not in real.to_dict()

    total = Usage.total([real, usage])
    assert total.cost_usd == 1.0 and total.offline_priced_as == {'openai:gpt-4o-mini'}
    assert Usage.from_dict(total.to_dict()) == total
