"""A case's cassette file: where it lives, its YAML format, and the scrubbing of everything it stores.

The format is vcrpy's (`version: 1`, `interactions:` of `request`/`response`), so the files stay readable by vcrpy
and pytest-recording; JSON bodies are pretty-printed and multi-line text is written as YAML block scalars, so a
re-recording gives a readable diff. Secrets are replaced with `<scrubbed>` before anything is written, and requests
are scrubbed the same way before they are matched; what the scrubber took is matched through a digest of the
unscrubbed body, kept beside each request (`run.request_digest`). How a case uses its cassette is in `run.replay`.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from ..safety.files import write_text_atomic
from ..safety.scrub import SecretScrubber
from .request_digest import DIGEST_KEY, SALT_KEY, digest_to_store, new_salt, valid_salt, with_digest
from .vcrpy import vcr

__all__ = (
    'SCRUBBED',
    'CassetteMiss',
    'CassettePersister',
    'CassetteScrubber',
    'CassetteSerializer',
    'CorruptCassette',
    'ReplayError',
    'cassette_path',
    'recorded_at',
    'volatile_header',
)

SCRUBBED = '<scrubbed>'
# Headers whose value is a secret whatever their name says (the scrubber's key patterns catch the rest:
# `X-Custom-Secret`, `X-Org-Token`, `Set-Cookie`, `api-key`...).
_SECRET_HEADERS = frozenset({'authorization', 'proxy-authorization', 'openai-organization', 'openai-project'})
# Headers not stored: they change with SDK versions, machines, retries and time, and would make every re-recording a
# noisy diff (trace context, dates, generated request ids). Headers take no part in matching (except Content-Type,
# which tells the body matcher to parse JSON).
_VOLATILE_HEADERS = frozenset(
    {
        'host', 'connection', 'accept-encoding', 'content-length', 'user-agent', 'traceparent', 'tracestate',
        'baggage', 'date', 'idempotency-key', 'x-request-id', 'request-id', 'x-client-request-id', 'cf-ray',
        'openai-processing-ms', 'x-envoy-upstream-service-time', 'apim-request-id', 'x-amzn-requestid',
        'x-amz-request-id', 'server-timing', 'age', 'x-cloud-trace-context',
    }
)  # fmt: skip
_VOLATILE_HEADER_PREFIXES = ('x-stainless-',)
# Query parameters that hold credentials under names no key pattern matches.
_SECRET_QUERY_PARAMS = frozenset({'key', 'sig', 'signature'})


def volatile_header(name: str) -> bool:
    """Whether a header is left out of cassettes (it changes from one recording to the next)."""
    lowered = name.lower()
    return lowered in _VOLATILE_HEADERS or lowered.startswith(_VOLATILE_HEADER_PREFIXES)


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
    """Replaces secrets in requests and responses before they are stored (and before matching, symmetrically).

    The patterns are the one `SecretScrubber`'s (with `<scrubbed>` as the replacement): secret headers, query
    parameters and JSON keys lose their values, and secrets inside any text are replaced. A response is also
    scrubbed of the secrets its request carried (`request_secrets`), so a token the server echoes is not stored.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._scrubber = SecretScrubber(self.patterns, replacement=SCRUBBED, key_note=False)

    def text(self, value: str, secrets: Iterable[str] = ()) -> str:
        value = self._scrubber.scrub_text(value)
        for secret in secrets:
            value = value.replace(secret, SCRUBBED)
        return value

    def _secret_header(self, name: str) -> bool:
        return name.lower() in _SECRET_HEADERS or self._scrubber.is_secret_key(name)

    def _secret_param(self, name: str) -> bool:
        return name.lower() in _SECRET_QUERY_PARAMS or self._scrubber.is_secret_key(name)

    def body(self, body: Any, secrets: Iterable[str] = ()) -> Any:
        secrets = tuple(secrets)  # read once per JSON path of a stream, and once more over the whole text
        if isinstance(body, bytes):
            try:
                text = body.decode('utf-8')
            except UnicodeDecodeError:
                return body
            scrubbed = self._body_text(text, secrets)
            return body if scrubbed == text else scrubbed.encode('utf-8')
        if isinstance(body, str):
            return self._body_text(body, secrets)
        return body

    def _body_text(self, text: str, secrets: tuple[str, ...]) -> str:
        if text.startswith('data:') or '\ndata:' in text:
            text = self._stream_text(text, secrets)
        if text.lstrip().startswith(('{', '[')):
            # Values under secret JSON keys go whatever their length; the text is re-written only when one did.
            try:
                data = json.loads(text)
            except ValueError:
                pass
            else:
                scrubbed = self._scrubber.scrub_value(data)
                if scrubbed != data:
                    text = json.dumps(scrubbed, ensure_ascii=False)
        return self.text(text, secrets)

    def _stream_text(self, text: str, secrets: tuple[str, ...]) -> str:
        """A server-sent-events body with the secrets that only its joined deltas show scrubbed.

        A streamed answer comes in pieces (`delta.content` of each chunk), and a secret split across two chunks is
        whole only once a client joins them: the strings of one delta (a JSON path under a `delta` key, told apart
        by the `index` of what holds them, as parallel tool calls are) are joined across the events, scrubbed
        together, and what a replacement covers is cut from the pieces it spans (the marker goes where it starts).
        """
        lines = text.split('\n')
        leaves: dict[tuple[Any, ...], list[tuple[int, Any, Any]]] = {}
        events: dict[int, Any] = {}
        for i, line in enumerate(lines):
            if not line.startswith('data:'):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            events[i] = event
            for path, container, key in _string_leaves(event, ()):
                if 'delta' in path:
                    leaves.setdefault(path, []).append((i, container, key))
        touched: set[int] = set()
        for found in leaves.values():
            pieces = [cast(str, container[key]) for _, container, key in found]
            joined = ''.join(pieces)
            scrubbed = self.text(joined, secrets)
            if scrubbed == joined:
                continue
            for (i, container, key), piece in zip(found, _respread(pieces, scrubbed, SCRUBBED), strict=True):
                if container[key] != piece:
                    container[key] = piece
                    touched.add(i)
        for i in touched:
            lines[i] = 'data: ' + json.dumps(events[i], ensure_ascii=False)
        return '\n'.join(lines)

    def uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.query:
            query = [
                (k, SCRUBBED if self._secret_param(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ]
            parts = parts._replace(query=urlencode(query, safe='<>'))
        return self.text(urlunsplit(parts))

    def request_secrets(self, request: Any) -> list[str]:
        """The secret values a request carries (secret headers, query parameters and JSON keys), to keep them out
        of its response."""
        found: list[str] = []
        for name, value in request.headers.items():
            if self._secret_header(name):
                text = str(value)
                found.append(text)
                found.extend(text.split()[1:])  # `Bearer <token>`: the token alone, as a server might echo it
        query = urlsplit(str(request.uri)).query
        found.extend(v for k, v in parse_qsl(query) if self._secret_param(k))
        body = request.body
        if isinstance(body, bytes):
            body = body.decode('utf-8', errors='replace')
        if isinstance(body, str) and body.lstrip().startswith('{'):
            with contextlib.suppress(ValueError):
                found.extend(self._secret_json_values(json.loads(body)))
        return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)

    def _secret_json_values(self, data: Any) -> Iterable[str]:
        if isinstance(data, dict):
            for k, v in cast(dict[str, Any], data).items():
                if self._scrubber.is_secret_key(str(k)) and isinstance(v, str | int):
                    yield str(v)
                else:
                    yield from self._secret_json_values(v)
        elif isinstance(data, list):
            for v in cast(list[Any], data):
                yield from self._secret_json_values(v)

    def request(self, request: Any) -> Any:
        request = copy.copy(request)
        request.uri = self.uri(request.uri)
        request.headers = {
            k: SCRUBBED if self._secret_header(k) else self.text(str(v))
            for k, v in request.headers.items()
            if not volatile_header(k)
        }
        request.body = self.body(request.body)
        return request

    def response(self, response: dict[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
        secrets = tuple(secrets)
        response = vcr().decode_response(response)
        headers = cast(dict[str, list[str]], response['headers'])
        response['headers'] = {
            k: [SCRUBBED if self._secret_header(k) else self.text(str(v), secrets) for v in values]
            for k, values in headers.items()
            if not volatile_header(k)
        }
        response['body'] = {'string': self.body(response['body']['string'], secrets)}
        return response


def _string_leaves(value: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], Any, Any]]:
    """Each string inside JSON data: its path, and the container and key that hold it.

    A list item that carries an `index` (OpenAI's streamed choices and tool calls) is at that index in the path,
    not at its position in the list: parallel tool calls each come as item 0 of their chunk.
    """
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = cast(dict[str, Any], value).items()
    elif isinstance(value, list):
        items = ((_list_key(k, item), item) for k, item in enumerate(cast(list[Any], value)))
    else:
        return
    for key, item in items:
        if isinstance(item, str):
            yield (*path, key), value, key
        else:
            yield from _string_leaves(item, (*path, key))


def _list_key(position: int, item: Any) -> Any:
    index = cast(dict[str, Any], item).get('index') if isinstance(item, dict) else None
    return ('index', index) if isinstance(index, int) else position


def _respread(pieces: Sequence[str], scrubbed: str, marker: str) -> list[str]:
    """`pieces`, whose join was scrubbed into `scrubbed`, cut so that they join into `scrubbed`: kept text stays in
    its piece; a replacement goes into the piece where the replaced text began, and the rest of that text is cut.

    Scrubbing only replaces texts with `marker`, so the texts between markers are found in the join in order (a
    linear pass). Whatever piece a kept character lands in, the pieces hold only what `scrubbed` holds.
    """
    joined = ''.join(pieces)
    kept = scrubbed.split(marker)
    starts: list[int] = []
    at = 0
    for k, text in enumerate(kept):
        start = 0 if k == 0 else len(joined) - len(text) if k == len(kept) - 1 else joined.find(text, at)
        if start < at or joined[start : start + len(text)] != text:
            return [scrubbed, *[''] * (len(pieces) - 1)]  # not a replacement of markers: all in one piece
        starts.append(start)
        at = start + len(text)
    bounds = list(itertools.accumulate(len(piece) for piece in pieces))  # where each piece ends in the join
    out = [''] * len(pieces)

    def put(start: int, end: int) -> None:
        # Cut the join's text [start, end) at the pieces' bounds.
        k = bisect.bisect_right(bounds, start)
        while start < end:
            stop = min(end, bounds[k])
            out[k] += joined[start:stop]
            start, k = stop, k + 1

    for k, (text, start) in enumerate(zip(kept, starts, strict=True)):
        if k:  # the marker before this text, where what it replaced began
            began = starts[k - 1] + len(kept[k - 1])
            out[min(bisect.bisect_right(bounds, began), len(pieces) - 1)] += marker
        put(start, start + len(text))
    return out


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
        # `recorded_at` leads (vcrpy ignores it): the summary of a replayed run says when its answers were recorded.
        cassette_dict = {'recorded_at': _now(), **copy.deepcopy(cassette_dict)}
        for interaction in cassette_dict['interactions']:
            request, response = interaction['request'], interaction['response']
            request['body'] = _pretty_json(request['body'])
            response['body']['string'] = _pretty_json(response['body']['string'])
        text = yaml.dump(cassette_dict, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)
        # Last line of defence: nothing matching a secret pattern reaches the disk, whatever field it hid in.
        return self._scrubber.text(text)

    def deserialize(self, cassette_string: str) -> Any:
        return vcr().yaml_serializer.deserialize(cassette_string)


class CassettePersister:
    """A vcrpy persister that writes atomically, turns an unreadable file into `CorruptCassette`, and keeps the
    cassette's request digests (see `run.request_digest`): its salt, and the digest beside each interaction."""

    def __init__(self) -> None:
        self._salt: str | None = None

    @property
    def salt(self) -> str:
        """The cassette's digest salt: the one its file holds once loaded, else a new one (written with the file)."""
        if self._salt is None:
            self._salt = new_salt()
        return self._salt

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> Any:
        path = Path(cassette_path)
        if not path.is_file():
            raise vcr().CassetteNotFoundError()
        try:
            data = path.read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError) as e:
            raise CorruptCassette(f'corrupt cassette {path}: {e}') from e
        if not data.strip():
            raise vcr().CassetteNotFoundError()
        try:
            parsed = serializer.deserialize(data)
            requests, responses, *_ = cast(tuple[Any, ...], vcr().deserialize(parsed, _Parsed()))
            for response in responses:
                _check_response(response)
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CorruptCassette(f'corrupt cassette {path}: {reason}') from e
        # Digests count only under the salt they were made with: without a readable salt (a cassette from before
        # digests, or one edited by hand) its requests have none, and are matched on their scrubbed form.
        self._salt = valid_salt(cast(dict[str, Any], parsed).get(SALT_KEY))
        if self._salt is not None:
            for request, interaction in zip(requests, cast(list[dict[str, Any]], parsed['interactions']), strict=True):
                with_digest(request, interaction.get(DIGEST_KEY))
        return requests, responses

    def save_cassette(self, cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any) -> None:
        path = Path(cassette_path)
        requests = cast(list[Any], cassette_dict['requests'])
        text = cast(str, vcr().serialize(cassette_dict, _WithDigests(serializer, requests, self.salt)))
        # Recording an unchanged exchange again leaves the file alone: an empty diff, and the date of what it holds.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if _stable(path.read_text(encoding='utf-8')) == _stable(text):
                return
        # Write then rename, so an interrupted run never leaves a half-written cassette.
        write_text_atomic(path, text)


class _Parsed:
    """A serializer for vcrpy's `deserialize` that hands back the mapping it is given, parsed once already."""

    def deserialize(self, parsed: Any) -> Any:
        return parsed


class _WithDigests:
    """A serializer for vcrpy's `serialize`: the interactions vcrpy built get their request's digest beside them,
    and the cassette its salt, before `serializer` writes them."""

    def __init__(self, serializer: Any, requests: list[Any], salt: str) -> None:
        self._serializer = serializer
        self._requests = requests
        self._salt = salt

    def serialize(self, data: dict[str, Any]) -> Any:
        interactions = cast(list[dict[str, Any]], data['interactions'])
        for interaction, request in zip(interactions, self._requests, strict=True):
            digest = digest_to_store(request, cast(dict[str, Any], interaction['request']).get('body'))
            if digest is not None:
                interaction[DIGEST_KEY] = digest
        data = {k: v for k, v in data.items() if k != 'interactions'}
        return self._serializer.serialize({**data, SALT_KEY: self._salt, 'interactions': interactions})


_RECORDED_AT = re.compile(r"^recorded_at: '?([^'\n]*)'?\n", re.MULTILINE)


# Values that differ between two recordings of the same exchange, left out when deciding whether a cassette changed:
# its date, and the ids and timestamps a provider generates for each response (`"id": "chatcmpl-…"`, `"created"`).
_VOLATILE_VALUES = re.compile(r'^recorded_at: .*\n|(?<="id":)\s*"[^"]*"|(?<="created":)\s*\d+', re.MULTILINE)


def _stable(text: str) -> str:
    return _VOLATILE_VALUES.sub('', text)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')


def recorded_at(path: Path) -> str | None:
    """When a cassette was recorded: its `recorded_at`, else (a cassette of an older evaltrace, or vcrpy's) the
    file's modification time; None when it cannot be read."""
    try:
        with path.open(encoding='utf-8') as f:
            head = f.read(200)
        match = _RECORDED_AT.search(head)
        if match:
            return match.group(1)
        mtime = path.stat().st_mtime
    except (OSError, UnicodeDecodeError):
        return None
    return dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')


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
