"""A case's cassette file: where it lives, its YAML format, and the scrubbing of everything it stores.

The format is vcrpy's (`version: 1`, `interactions:` of `request`/`response`), so the files stay readable by vcrpy
and pytest-recording; JSON bodies are pretty-printed and multi-line text is written as YAML block scalars, so a
re-recording gives a readable diff. Secrets are replaced with `<scrubbed>` before anything is written, and requests
are scrubbed the same way before they are matched. How a case uses its cassette is in `_replay`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from vcr import filters as _vcr_filters  # pyright: ignore[reportMissingTypeStubs]
from vcr import serialize as _vcr_serialize  # pyright: ignore[reportMissingTypeStubs]
from vcr.persisters.filesystem import CassetteNotFoundError  # pyright: ignore[reportMissingTypeStubs]
from vcr.serializers import yamlserializer as _vcr_yaml  # pyright: ignore[reportMissingTypeStubs]

from ._files import write_text_atomic

# vcrpy ships no type information; its API is used through `Any`.
vcr_yaml: Any = _vcr_yaml
decode_response: Any = cast(Any, _vcr_filters).decode_response
vcr_serialize: Any = cast(Any, _vcr_serialize).serialize
vcr_deserialize: Any = cast(Any, _vcr_serialize).deserialize

__all__ = (
    'SCRUBBED',
    'CassetteMiss',
    'CassettePersister',
    'CassetteScrubber',
    'CassetteSerializer',
    'CorruptCassette',
    'ReplayError',
    'cassette_path',
)

SCRUBBED = '<scrubbed>'
_SECRET_HEADERS = frozenset(
    {
        'authorization',
        'proxy-authorization',
        'api-key',
        'x-api-key',
        'x-goog-api-key',
        'cookie',
        'set-cookie',
        'openai-organization',
        'openai-project',
    }
)
# Request headers not stored: they change with SDK versions, machines and retries, and would make every re-recording
# a noisy diff. Headers take no part in matching (except Content-Type, which tells the body matcher to parse JSON).
_VOLATILE_REQUEST_HEADERS = frozenset({'host', 'connection', 'accept-encoding', 'content-length', 'user-agent'})
_VOLATILE_REQUEST_HEADER_PREFIXES = ('x-stainless-',)
_SECRET_QUERY_PARAMS = frozenset({'key', 'api_key', 'api-key', 'apikey', 'access_token', 'token'})
# Well-known key shapes, scrubbed wherever they appear (bodies, URLs, header values).
_DEFAULT_PATTERNS = (
    r'sk-[A-Za-z0-9_\-]{16,}',  # OpenAI / Anthropic style keys
    r'AIza[0-9A-Za-z_\-]{30,}',  # Google API keys
    r'(?i)bearer\s+[A-Za-z0-9._~+/\-]{8,}=*',
)
_SECRET_ENV_NAME = re.compile(r'(API_KEY|APIKEY|_TOKEN|_SECRET|PASSWORD)$', re.IGNORECASE)


class ReplayError(Exception):
    """A replay problem that makes one case an error."""


class CassetteMiss(ReplayError):
    """A request has no recorded response and the record mode forbids calling the provider."""


class CorruptCassette(ReplayError):
    """A cassette file that can't be read."""


# --------------------------------------------------------------------------------------------------------------------
# Paths


def _slug(name: str) -> str:
    slug = re.sub(r'[^\w .\-]+', '_', name).strip(' ._')[:80] or 'case'
    # A name changed by the slug could collide with another case's; the hash keeps them apart.
    if slug != name:
        slug = f'{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}'
    return slug


def cassette_path(root: str | Path, module: str, function: str, case: str, repeat: int | None = None) -> Path:
    """The cassette file of one case: `<root>/<module>/<function>/<case>[.r<repeat>].yaml`.

    Args:
        root: the cassette folder, for example `evals/cassettes`.
        module: the suite's module name (a dotted name or a file stem).
        function: the suite's function name.
        case: the case name; characters unsafe in file names are replaced (and a short hash added).
        repeat: the repeat index when the suite repeats cases (`None` or 0 for the first run: no suffix).
    """
    suffix = f'.r{repeat}' if repeat else ''
    return Path(root) / _slug(module) / _slug(function) / f'{_slug(case)}{suffix}.yaml'


# --------------------------------------------------------------------------------------------------------------------
# Scrubbing


class CassetteScrubber:
    """Replaces secrets in requests and responses before they are stored (and before matching, symmetrically)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        env_secrets = [
            re.escape(v) for k, v in os.environ.items() if _SECRET_ENV_NAME.search(k) and len(v.strip()) >= 8
        ]
        self.patterns = [re.compile(p) for p in (*_DEFAULT_PATTERNS, *patterns, *env_secrets)]

    def text(self, value: str) -> str:
        for pattern in self.patterns:
            value = pattern.sub(SCRUBBED, value)
        return value

    def body(self, body: Any) -> Any:
        if isinstance(body, bytes):
            try:
                text = body.decode('utf-8')
            except UnicodeDecodeError:
                return body
            scrubbed = self.text(text)
            return body if scrubbed == text else scrubbed.encode('utf-8')
        if isinstance(body, str):
            return self.text(body)
        return body

    def uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.query:
            query = [
                (k, SCRUBBED if k.lower() in _SECRET_QUERY_PARAMS else v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ]
            parts = parts._replace(query=urlencode(query, safe='<>'))
        return self.text(urlunsplit(parts))

    def request(self, request: Any) -> Any:
        request = copy.copy(request)
        request.uri = self.uri(request.uri)
        request.headers = {
            k: SCRUBBED if k.lower() in _SECRET_HEADERS else self.text(str(v))
            for k, v in request.headers.items()
            if k.lower() not in _VOLATILE_REQUEST_HEADERS
            and not k.lower().startswith(_VOLATILE_REQUEST_HEADER_PREFIXES)
        }
        request.body = self.body(request.body)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        response = decode_response(response)
        headers = cast(dict[str, list[str]], response['headers'])
        response['headers'] = {
            k: [SCRUBBED if k.lower() in _SECRET_HEADERS else self.text(str(v)) for v in values]
            for k, values in headers.items()
        }
        response['body'] = {'string': self.body(response['body']['string'])}
        return response


# --------------------------------------------------------------------------------------------------------------------
# Cassette file format: vcrpy's YAML layout, with JSON bodies pretty-printed and multi-line text as YAML block scalars.


# libyaml's dumper when available: several times faster than the pure-Python one.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, 'CSafeDumper', yaml.SafeDumper)


class _Dumper(_BaseDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '|' if '\n' in value else None
    return cast(Any, dumper).represent_scalar('tag:yaml.org,2002:str', value, style=style)


_Dumper.add_representer(str, _represent_str)


def _pretty_json(body: Any) -> Any:
    if not isinstance(body, str) or not body.lstrip().startswith(('{', '[')):
        return body
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False) + '\n'
    except ValueError:
        return body


class CassetteSerializer:
    """A vcrpy serializer (`serialize`/`deserialize`) that writes diff-friendly YAML vcrpy can read back."""

    def __init__(self, scrubber: CassetteScrubber) -> None:
        self._scrubber = scrubber

    def serialize(self, cassette_dict: dict[str, Any]) -> str:
        # vcrpy hands over its in-memory interactions; work on a copy so the cassette's own data stays untouched.
        cassette_dict = copy.deepcopy(cassette_dict)
        for interaction in cassette_dict['interactions']:
            request, response = interaction['request'], interaction['response']
            request['body'] = _pretty_json(request['body'])
            response['body']['string'] = _pretty_json(response['body']['string'])
        text = yaml.dump(cassette_dict, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)
        # Last line of defence: nothing matching a secret pattern reaches the disk, whatever field it hid in.
        return self._scrubber.text(text)

    def deserialize(self, cassette_string: str) -> Any:
        return vcr_yaml.deserialize(cassette_string)


class CassettePersister:
    """A vcrpy persister that writes atomically and turns an unreadable file into `CorruptCassette`."""

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> Any:
        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            data = path.read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError) as e:
            raise CorruptCassette(f'corrupt cassette {path}: {e}') from e
        if not data.strip():
            raise CassetteNotFoundError()
        try:
            requests, responses, *_ = cast(tuple[Any, ...], vcr_deserialize(data, serializer))
            for response in responses:
                _check_response(response)
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CorruptCassette(f'corrupt cassette {path}: {reason}') from e
        return requests, responses

    def save_cassette(self, cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any) -> None:
        path = Path(cassette_path)
        text = cast(str, vcr_serialize(cassette_dict, serializer))
        # Write then rename, so an interrupted run never leaves a half-written cassette.
        write_text_atomic(path, text)


def _check_response(response: Any) -> None:
    if not isinstance(response, dict):
        raise ValueError('an interaction has no response mapping')
    response = cast(dict[str, Any], response)
    status = response.get('status')
    if not isinstance(status, dict) or not isinstance(cast(dict[str, Any], status).get('code'), int):
        raise ValueError('a response has no integer status.code')
    if not isinstance(response.get('headers'), dict):
        raise ValueError('a response has no headers mapping')
    body = response.get('body')
    if not isinstance(body, dict) or 'string' not in body:
        raise ValueError('a response has no body.string')
