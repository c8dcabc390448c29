"""The one scrubber: its patterns come from the installed logfire, and it catches each kind of secret anywhere."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from vcr.request import Request  # pyright: ignore[reportMissingTypeStubs]

from evaltrace.run.cassette import SCRUBBED, CassetteScrubber
from evaltrace.safety.scrub import SecretScrubber, key_patterns, logfire_key_patterns, required_literal, start_chars

PREFIXED = [
    'AKIAIOSFODNN7EXAMPLE',
    'ghp_' + 'a1B2c3D4e5' * 4,
    'github_pat_' + 'a1B2c3D4e5' * 4,
    'hf_' + 'QwErTyUiOp' * 4,
    'xoxb-1234567890-abcdefghij',
    'pylf_v1_us_' + 'Zx9Yw8Vu7T' * 4,
    'gsk_' + 'Mn0Pq1Rs2T' * 4,
    'sk-proj-Abc123Def456Ghi789Jkl012',
    'AIza' + 'SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5',
]


def test_key_patterns_are_the_installed_logfires() -> None:
    from logfire._internal.scrubbing import DEFAULT_PATTERNS

    assert list(logfire_key_patterns()) == list(DEFAULT_PATTERNS)
    assert set(DEFAULT_PATTERNS) <= set(key_patterns())


@pytest.mark.parametrize('pattern', key_patterns())
def test_the_derived_literal_and_start_chars_hold_for_every_key_pattern(pattern: str) -> None:
    """The pre-check literal is in every match, and the look-ahead admits every match's first character."""
    literal = required_literal(pattern)
    starts = start_chars([pattern])
    assert literal is not None and starts is not None
    for text in (f'x_{literal}_y', literal, literal.upper(), f'{literal} key', f'private key {literal}'):
        for match in re.finditer(pattern, text, re.IGNORECASE):
            if match.group(0):
                assert literal in match.group(0).lower()
                assert match.group(0)[0] in starts


@pytest.mark.parametrize('secret', PREFIXED)
def test_each_key_prefix_is_scrubbed_in_free_text(secret: str) -> None:
    assert SecretScrubber().scrub_text(f'failed with {secret}.') == 'failed with [Scrubbed].'


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('login password=hunter2 failed', 'login password=[Scrubbed] failed'),
        ('{"password": "hunter2"}', '{"password": "[Scrubbed]"}'),
        ("{'db_passwd': 'hunter22'}", "{'db_passwd': '[Scrubbed]'}"),
        ('X-Custom-Secret: abcdef123', 'X-Custom-Secret: [Scrubbed]'),
        ('GET /v1?token=abc123def&x=1', 'GET /v1?token=[Scrubbed]&x=1'),
        ('Authorization: Bearer abcdef12345', 'Authorization: [Scrubbed]'),
        ('input_tokens: 1234567, token_count=123456', 'input_tokens: 1234567, token_count=123456'),
        ('the authors: Ada Lovelace', 'the authors: Ada Lovelace'),
    ],
)
def test_secrets_under_a_key_in_free_text(text: str, expected: str) -> None:
    assert SecretScrubber().scrub_text(text) == expected


def test_secret_environment_values_are_scrubbed_anywhere() -> None:
    scrubber = SecretScrubber(environ={'ACME_API_KEY': 'plain-value-1234', 'HOME': '/home/someone'})
    assert scrubber.scrub_text('sent plain-value-1234 from /home/someone') == 'sent [Scrubbed] from /home/someone'


def test_cassettes_and_reports_use_the_same_patterns() -> None:
    cassette = CassetteScrubber([r'ACME-\d+'])
    report = SecretScrubber([r'ACME-\d+'])
    text = ' '.join(['password=hunter2 ACME-42', *PREFIXED])
    assert cassette.text(text) == report.scrub_text(text).replace('[Scrubbed]', SCRUBBED)
    assert 'hunter2' not in cassette.text(text)


def test_a_cassette_request_loses_secret_headers_query_parameters_and_json_keys() -> None:
    body = json.dumps({'messages': [{'content': 'hi'}], 'metadata': {'password': 'abc'}, 'session_token': 'xyz'})
    request: Any = Request(
        'POST',
        'http://127.0.0.1:8080/v1/chat?password=qry-secret&api_key=k-secret&page=2',
        body.encode(),
        {'X-Custom-Secret': 'hdr-secret', 'X-Org-Token': 'tok-secret', 'Content-Type': 'application/json'},
    )
    scrubbed = CassetteScrubber(()).request(request)
    assert 'qry-secret' not in scrubbed.uri and 'k-secret' not in scrubbed.uri and 'page=2' in scrubbed.uri
    assert scrubbed.headers['X-Custom-Secret'] == scrubbed.headers['X-Org-Token'] == SCRUBBED
    assert json.loads(scrubbed.body) == {
        'messages': [{'content': 'hi'}],
        'metadata': {'password': SCRUBBED},
        'session_token': SCRUBBED,
    }


def test_a_token_the_request_sent_is_scrubbed_from_its_response() -> None:
    scrubber = CassetteScrubber(())
    request: Any = Request(
        'POST', 'http://h/v1', b'{}', {'X-Custom-Secret': 'hdr-7f3a9c', 'Authorization': 'Bearer t0k-abcdef'}
    )
    secrets = scrubber.request_secrets(request)
    response = {
        'status': {'code': 200, 'message': 'OK'},
        'headers': {'X-Echo': ['hdr-7f3a9c'], 'Date': ['Sun, 29 Nov 2026 03:00:00 GMT']},
        'body': {'string': b'{"text": "your token is hdr-7f3a9c, bearer t0k-abcdef"}'},
    }
    stored = scrubber.response(response, secrets)
    assert stored['headers'] == {'X-Echo': [SCRUBBED]}  # and the date, a volatile header, is not stored
    assert stored['body']['string'] == f'{{"text": "your token is {SCRUBBED}, bearer {SCRUBBED}"}}'.encode()


def test_a_text_scrubbed_before_a_literal_was_added_is_scrubbed_again_after() -> None:
    # scrub_text remembers short texts it scrubbed; a secret learnt later must not hide behind that memory.
    scrubber = SecretScrubber(environ={})
    text = 'the reply quoted zq81-Vv0-secret-of-the-day'
    assert scrubber.scrub_text(text) == text
    scrubber.add_literals(['zq81-Vv0-secret-of-the-day'])
    assert scrubber.scrub_text(text) == 'the reply quoted [Scrubbed]'


def test_an_attribute_key_scrubbed_before_a_literal_was_added_is_scrubbed_again_after() -> None:
    # scrub_attributes remembers each key it scrubbed; a secret learnt later must not hide behind that memory.
    scrubber = SecretScrubber(environ={})
    attributes = {'reply.zq81-Vv0-word-of-the-day': 1, 'note': 'zq81-Vv0-word-of-the-day'}
    assert scrubber.scrub_attributes(attributes) == attributes
    scrubber.add_literals(['zq81-Vv0-word-of-the-day'])
    assert scrubber.scrub_attributes(attributes) == {'reply.[Scrubbed]': 1, 'note': '[Scrubbed]'}


def test_a_secret_in_a_span_attribute_name_is_scrubbed() -> None:
    scrubber = SecretScrubber(environ={})
    secret = 'sk-proj-Abc123Def456Ghi789Jkl012'
    scrubbed = scrubber.scrub_attributes({f'reply.{secret}': 'x', 'ok': 'y'})
    assert scrubbed == {'reply.[Scrubbed]': 'x', 'ok': 'y'}


def _sse(pieces: list[str]) -> bytes:
    events = [{'choices': [{'index': 0, 'delta': {'content': p}}]} for p in pieces]
    return (''.join(f'data: {json.dumps(e)}\n\n' for e in events) + 'data: [DONE]\n\n').encode()


def _joined(body: bytes) -> str:
    out = ''
    for line in body.decode().splitlines():
        if line.startswith('data: {'):
            out += json.loads(line[6:])['choices'][0]['delta']['content']
    return out


def test_a_secret_split_across_the_chunks_of_a_streamed_response_is_scrubbed() -> None:
    # Each chunk was scrubbed on its own: a secret split across two deltas survived in the cassette whole, once
    # the deltas are joined, as a client joins them.
    scrubber = CassetteScrubber(())
    pieces = ['login with pass', 'word=hunter2zz ple', 'ase key=t0k-abc', 'def done']
    stored = scrubber.body(_sse(pieces), ['t0k-abcdef'])
    joined = _joined(stored)
    assert 'hunter2zz' not in joined and 't0k-abcdef' not in joined
    assert joined == f'login with password={SCRUBBED} please key={SCRUBBED} done'
    assert stored.decode().endswith('data: [DONE]\n\n')
    untouched = _sse(['nothing ', 'secret ', 'here'])
    assert scrubber.body(untouched) == untouched


def _chunks(body: bytes) -> list[str]:
    return [
        json.loads(line[6:])['choices'][0]['delta']['content']
        for line in body.decode().splitlines()
        if line.startswith('data: {')
    ]


def test_a_streamed_chunk_keeps_its_own_text_and_a_marker_goes_where_its_secret_began() -> None:
    scrubber = CassetteScrubber(())
    pieces = ['login with pass', 'word=hunter2zz ple', 'ase key=t0k-abc', 'def done']
    stored = scrubber.body(_sse(pieces), ['t0k-abcdef'])
    assert _chunks(stored) == ['login with pass', f'word={SCRUBBED} ple', f'ase key={SCRUBBED}', ' done']


def test_a_long_streamed_answer_is_scrubbed_whole_chunk_by_chunk() -> None:
    # Spreading the scrubbed text back over the chunks once took minutes for a 25,000-character answer (a diff of
    # the whole text): a long answer with secrets at both ends, scrubbed, each chunk keeping its own text.
    scrubber = CassetteScrubber(())
    middle = [f'sentence {i} of a long answer. ' for i in range(3000)]
    pieces = ['password=hunt', 'er2zz and ', *middle, 'last key=t0k-abc', 'def']
    stored = scrubber.body(_sse(pieces), ['t0k-abcdef'])
    chunks = _chunks(stored)
    assert chunks[0] == f'password={SCRUBBED}'
    assert chunks[1] == ' and '
    assert chunks[2:-2] == middle
    assert chunks[-2:] == [f'last key={SCRUBBED}', '']


def test_parallel_tool_calls_streamed_side_by_side_are_not_joined_into_one_text() -> None:
    # OpenAI streams parallel tool calls each at `tool_calls[0]`, told apart by their `index`: joined by position,
    # the end of one call's arguments and the start of the other's read as one secret, and the replayed arguments
    # were rewritten.
    def event(index: int, arguments: str) -> dict[str, object]:
        call = {'index': index, 'function': {'arguments': arguments}}
        return {'choices': [{'index': 0, 'delta': {'tool_calls': [call]}}]}

    events = [event(0, '{"q": "my pass'), event(1, 'word=abcdefgh1"}'), event(0, '"}'), event(1, '')]
    body = (''.join(f'data: {json.dumps(e)}\n\n' for e in events) + 'data: [DONE]\n\n').encode()
    assert CassetteScrubber(()).body(body) == body


def test_secrets_given_as_a_generator_are_kept_out_of_every_part_of_a_body() -> None:
    # The secrets were gone after the first JSON path of a streamed body: the answer's text kept them.
    events = [{'id': 'chatcmpl-1', 'choices': [{'index': 0, 'delta': {'content': p}}]} for p in ['t0k-abc', 'def']]
    body = (''.join(f'data: {json.dumps(e)}\n\n' for e in events) + 'data: [DONE]\n\n').encode()
    stored = CassetteScrubber(()).body(body, (s for s in ['t0k-abcdef']))
    assert ''.join(_chunks(stored)) == SCRUBBED


@pytest.mark.parametrize(
    ('text', 'scrubbed'),
    [
        ('password: "correct horse battery staple"', 'password: "[Scrubbed]"'),
        ("api_key='a b c' then more", "api_key='[Scrubbed]' then more"),
        ('{"password": "my dog", "n": 1}', '{"password": "[Scrubbed]", "n": 1}'),
        ('{\\"password\\": \\"my dog\\"}', '{\\"password\\": \\"[Scrubbed]\\"}'),
        ('password: "[Scrubbed]"', 'password: "[Scrubbed]"'),
        ('password: "unclosed quote here', 'password: "[Scrubbed] quote here'),
    ],
)
def test_a_quoted_value_after_a_sensitive_key_is_scrubbed_whole(text: str, scrubbed: str) -> None:
    assert SecretScrubber(environ={}).scrub_text(text) == scrubbed


@pytest.mark.parametrize(
    ('text', 'scrubbed'),
    [
        ('login password=abc12 failed', 'login password=[Scrubbed] failed'),
        ('GET /v1?auth=7&x=1', 'GET /v1?auth=[Scrubbed]&x=1'),
        ('db_pwd=x', 'db_pwd=[Scrubbed]'),
        ('password=[Scrubbed]', 'password=[Scrubbed]'),
        # Spaced, or after a colon, a short word is prose more often than a secret: kept, as before.
        ('password: reset', 'password: reset'),
        ('password = reset', 'password = reset'),
        ('the authors: Ada Lovelace', 'the authors: Ada Lovelace'),
    ],
)
def test_a_short_value_set_with_an_equals_sign_after_a_sensitive_key_is_scrubbed(text: str, scrubbed: str) -> None:
    # `password=abc12` kept its five characters: only values of 6+ were taken, to spare prose (`password: reset`).
    assert SecretScrubber(environ={}).scrub_text(text) == scrubbed


@pytest.mark.parametrize(
    ('message', 'template', 'attributes', 'scrubbed'),
    [
        # logfire's scrubbing may have replaced the attribute: the message is matched against its template.
        ('signed in with Kq7-rw2 as ann', 'signed in with {api_key} as {user}', {'api_key': '[x]', 'user': 'a'},
         'signed in with [Scrubbed] as ann'),
        ('login p1 p2 as bob', 'login {password} as {user}', {'password': 'p1 p2', 'user': 'bob'},
         'login [Scrubbed] as bob'),  # a value taken greedily: all of it, never half
        ('v password=1', 'v {password=}', {'password': 1}, 'v [Scrubbed]'),
        ('something else', 'login {password}', {'password': 'x'}, 'login {password}'),  # no match: the template
        ('case test[c0]', 'case: {case_name}', {'case_name': 'c0'}, 'case test[c0]'),  # no sensitive field
        ('{literal} hunter2', '{{literal}} {token}', {'token': 'hunter2'}, '{literal} [Scrubbed]'),
    ],
)  # fmt: skip
def test_a_sensitive_field_formatted_into_a_message_is_scrubbed_from_it(
    message: str, template: str, attributes: dict[str, object], scrubbed: str
) -> None:
    assert SecretScrubber(environ={}).scrub_message(message, template, attributes) == scrubbed
