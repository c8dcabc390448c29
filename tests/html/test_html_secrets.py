"""Secrets planted in spans and in the report never reach the HTML report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from evaltrace.store.duckdb import merge_spool
from evaltrace.views.html import read_page_data, write_html_report
from tests.support.eval_project import EvalProject
from tests.support.spool_recorder import Recorder

BEARER = 'Bearer tok_9f8e7d6c5b4a39281706'
SK_KEY = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234'
CUSTOM = 'ACME-SECRET-778899'


def test_planted_secrets_are_scrubbed_from_the_html(
    recorder_factory: Callable[..., Recorder], store_path: Path, tmp_path: Path
) -> None:
    rec = recorder_factory('run-secrets')
    lf = rec.logfire
    with lf.span('evaltrace case {case}', case='leaky') as root:
        # An Authorization header value and an sk- key in attributes (under innocent keys), in a message, in an
        # exception; and a custom pattern.
        with lf.span('http call', request_headers={'Authorization': BEARER}, note=f'using key {SK_KEY} now'):
            lf.info('called with {detail}', detail=f'Authorization: {BEARER} and {CUSTOM}')
        try:
            with lf.span('failing tool'):
                raise RuntimeError(f'provider rejected {SK_KEY}')
        except RuntimeError:
            pass
    trace_id = f'{root.get_span_context().trace_id:032x}'  # type: ignore[union-attr]
    rec.flush()
    merge_spool(store_path)
    report = {
        'run_id': 'run-secrets',
        'cases': [
            {
                'nodeid': 'evals/test_x.py::test_x[leaky]',
                'status': 'failed',
                'trace_id': trace_id,
                'failures': [f'expected no key, got {SK_KEY}'],
                'inputs': {'headers': {'Authorization': BEARER}},
                'output': f'{CUSTOM} {SK_KEY}',
                'error': {'type': 'X', 'message': BEARER, 'traceback': f'api_key={SK_KEY}'},
            }
        ],
    }
    page = tmp_path / 'report.html'
    write_html_report(page, report, store_path=store_path, scrub_patterns=(r'ACME-SECRET-\d+',))
    page_text = page.read_text(encoding='utf-8')
    # What the page holds, its gzipped blocks inflated: a secret must be in neither.
    text = page_text + json.dumps(read_page_data(page_text), ensure_ascii=False)

    assert 'http call' in text
    assert 'failing tool' in text
    for secret in (BEARER, 'tok_9f8e7d6c5b4a39281706', SK_KEY, CUSTOM):
        assert secret not in text  # ...without the secrets
    assert '[Scrubbed' in text


def test_names_that_hold_a_sensitive_word_are_kept(project: EvalProject) -> None:
    """Node ids and suite names are the user's own: `test_auth.py::test_session_notes` is no secret to scrub."""
    project.write(
        'evals/test_auth.py',
        """
        import evaltrace

        @evaltrace.suite('datasets/words.yaml')
        async def test_session_notes(inputs: str) -> str:
            return inputs
        """,
    )
    project.dataset('words', [{'name': 'token_refresh', 'inputs': 'x'}])
    project.pytester.runpytest_inprocess('-p', 'no:cacheprovider', 'evals').assert_outcomes(passed=1)
    page = read_page_data((project.path / '.evaltrace' / 'report.html').read_text(encoding='utf-8'))
    head = page['et-data']
    row = head['cases'][0]
    assert row['nodeid'] == 'evals/test_auth.py::test_session_notes[token_refresh]' and row['case'] == 'token_refresh'
    assert [s['suite'] for s in head['meta']['suites']] == ['evals/test_auth.py::test_session_notes']
    assert 'test_auth.py:[Scrubbed' not in json.dumps(head)
