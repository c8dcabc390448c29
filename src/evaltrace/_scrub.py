"""Secret scrubbing for everything evaltrace stores or renders: the local trace store and the HTML report.

logfire's own scrubbing runs first on spans (by key); this adds secrets inside free text (Authorization headers,
API keys of the usual shapes) and the user's `scrub_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic_core import from_json

from ._results import CaseResult

__all__ = ('SecretScrubber', 'scrub_case_result')


_SCRUBBED = '[Scrubbed]'
# Secrets inside free text (messages, URLs, tracebacks, model messages): logfire's own scrubber leaves those alone
# when they sit under keys it deems safe (`gen_ai.input.messages`, `url.full`, exception messages, ...).
# The lookahead lists every branch's first letter: most positions then fail at once (the trick logfire's uses).
# `_B` is a word boundary that also holds after a JSON escape (`\nsk-...` in JSON text is a newline before the key).
_B = r'(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf]))'
_VALUE_PATTERN = re.compile(
    (
        r'(?=[abcghpsx])(?:'
        rf'(?P<kv>(?P<key>{_B}(?:proxy-)?authorization|{_B}x-(?:goog-)?api-key|{_B}api[-_]?key|{_B}access[-_]?token'
        rf'|{_B}client[-_]?secret)(?P<sep>\\?["\']?\s*[:=]\s*\\?["\']?)'
        r'(?:(?:bearer|basic)\s+)?(?!\[Scrubbed)[^\s"\'\\,;&}\]]{6,})'  # not a value scrubbed already
        rf'|(?P<scheme>{_B}(?:bearer|basic))\s+(?=[^\s"\']*[0-9=])[A-Za-z0-9\-._~+/]{{8,}}=*'
        rf'|{_B}sk-[A-Za-z0-9_\-]{{16,}}'
        rf'|{_B}AIza[0-9A-Za-z_\-]{{30,}}'
        rf'|{_B}(?:gsk|xai)[_-][A-Za-z0-9]{{20,}}'
        rf'|{_B}pylf_v\d+_[A-Za-z0-9_]{{10,}}'
        rf'|{_B}hf_[A-Za-z0-9]{{30,}}'
        rf'|{_B}gh[pousr]_[A-Za-z0-9]{{30,}}|{_B}github_pat_[A-Za-z0-9_]{{30,}}'
        rf'|{_B}AKIA[0-9A-Z]{{16}}(?![A-Za-z0-9])'
        rf'|{_B}xox[abprs]-[A-Za-z0-9-]{{10,}})'
    ),
    re.IGNORECASE,
)


_JSON_TYPES = ('object', 'array')
# A substring (lowercase) every `_VALUE_PATTERN` match contains: a few C-speed `in` checks skip the regex, which is
# slow on long texts, for almost every string (model messages are most of a trace's text).
_TRIGGERS = (
    'authorization', 'api-key', 'api_key', 'apikey', 'access', 'secret', 'bearer', 'basic', 'sk-', 'aiza', 'gsk_',
    'gsk-', 'xai-', 'xai_', 'pylf_', 'hf_', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_', 'akia', 'xox',
)  # fmt: skip


# logfire's default key patterns, each with a lowercase ASCII literal that every match of it contains. When logfire's
# list is exactly this one and no extra pattern is set, `in` checks on the lowered text stand in for the regex search
# (about 10 µs on a JSON attribute's text) for most values; otherwise the regex always runs.
_KEY_TRIGGERS = {
    'password': 'password', 'passwd': 'passwd', 'mysql_pwd': 'mysql_pwd', 'secret': 'secret',
    'auth(?!ors?\\b)': 'auth', 'credential': 'credential', 'private[._ -]?key': 'private', 'api[._ -]?key': 'api',
    'session': 'session', 'cookie': 'cookie', 'social[._ -]?security': 'social', 'credit[._ -]?card': 'credit',
    'logfire[._ -]?token': 'logfire', 'pylf_v\\d+_': 'pylf_v', '(?:\\b|_)csrf(?:\\b|_)': 'csrf',
    '(?:\\b|_)xsrf(?:\\b|_)': 'xsrf', '(?:\\b|_)jwt(?:\\b|_)': 'jwt', '(?:\\b|_)ssn(?:\\b|_)': 'ssn',
}  # fmt: skip


def _replace_secret(match: re.Match[str]) -> str:
    if match.group('kv'):
        return f'{match.group("key")}{match.group("sep")}{_SCRUBBED}'
    if scheme := match.group('scheme'):
        return f'{scheme} {_SCRUBBED}'
    return _SCRUBBED


class SecretScrubber:
    """Removes secrets from span data before it is stored or rendered.

    Two layers:
    - attribute *keys* that look sensitive have their whole value redacted: logfire's default scrubbing patterns
      (`auth`, `api key`, `password`, `secret`, `cookie`, `session`, ...) plus `extra_patterns`, except the keys
      logfire itself deems safe (`logfire.BaseScrubber.SAFE_KEYS`: token counts, model names, messages, ...);
    - in every string, wherever it sits, credentials are replaced: `Authorization: ...` / `api_key=...` forms,
      `Bearer ...` tokens, well-known API key shapes (`sk-...`, `AIza...`, `pylf_v1_...`, ...), and every match of
      `extra_patterns`.

    logfire's span processor has already scrubbed spans that went through a logfire-configured provider (its
    whole-value redaction of values that merely mention e.g. 'session' is not repeated here); this adds what
    logfire leaves in place, so that no file evaltrace writes holds a credential.

    Reuse it for anything rendered from spans (e.g. the HTML report): `scrub_text` for a string,
    `scrub_value` for JSON-like data, `scrub_attributes` for a span's attributes.
    """

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        """Compile the patterns.

        Args:
            extra_patterns: Regular expressions (Python syntax) of further secrets; matched case-insensitively.

        Raises:
            ValueError: A pattern is not a valid regular expression (the message names it).
        """
        compiled: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as e:
                raise ValueError(f'invalid scrubbing pattern {pattern!r}: {e}') from None
        self._extra = compiled
        # Imported here: importing logfire costs ~1 s, which `evaltrace sql` / `show` (read-only) need not pay.
        from logfire._internal.scrubbing import DEFAULT_PATTERNS, BaseScrubber

        self._key_pattern = re.compile('|'.join([*DEFAULT_PATTERNS, *extra_patterns]), re.IGNORECASE)
        known = not extra_patterns and list(DEFAULT_PATTERNS) == list(_KEY_TRIGGERS)
        self._key_triggers = tuple(_KEY_TRIGGERS.values()) if known else None
        self._safe_keys = frozenset(BaseScrubber.SAFE_KEYS)
        self._key_cache: dict[str, str | None] = {}

    def scrub_text(self, text: str) -> str:
        """Return `text` with every secret replaced by `[Scrubbed]`."""
        lowered = text.lower()
        if any(trigger in lowered for trigger in _TRIGGERS):
            text = _VALUE_PATTERN.sub(_replace_secret, text)
        for pattern in self._extra:
            text = pattern.sub(_SCRUBBED, text)
        return text

    def _may_hold_key(self, text: str) -> bool:
        """Whether a sensitive key may occur in `text` (no false negatives: the regex decides when unsure)."""
        if self._key_triggers is not None and text.isascii():
            lowered = text.lower()
            return any(trigger in lowered for trigger in self._key_triggers) and bool(self._key_pattern.search(text))
        return bool(self._key_pattern.search(text))

    def _redacted(self, key: str) -> str | None:
        """The replacement of the value under a sensitive key, else None (cached: keys repeat across spans)."""
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        match = None if key in self._safe_keys else self._key_pattern.search(key)
        # The note names the pattern that matched in the key, as logfire's does; never the value.
        redacted = f'[Scrubbed due to {match.group(0)!r}]' if match else None
        if len(self._key_cache) < 10_000:
            self._key_cache[key] = redacted
        return redacted

    def scrub_value(self, value: Any) -> Any:
        """Scrub JSON-like data (dicts, lists, tuples, scalars): sensitive keys and secrets in strings; a new value."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for k, v in cast('Mapping[Any, Any]', value).items():
                key = str(k)
                redacted = self._redacted(key)
                result[key] = self.scrub_value(v) if redacted is None else redacted
            return result
        if isinstance(value, list | tuple):
            return [self.scrub_value(v) for v in cast('Sequence[Any]', value)]
        return value

    def _redact_keys(self, value: Any) -> Any:
        # Like `scrub_value` without re-scrubbing strings, for JSON whose text was scrubbed already.
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for k, v in cast('dict[str, Any]', value).items():
                redacted = self._redacted(k)
                result[k] = self._redact_keys(v) if redacted is None else redacted
            return result
        if isinstance(value, list):
            return [self._redact_keys(v) for v in cast('list[Any]', value)]
        return value

    def scrub_attribute(self, key: str, value: Any, json_schema: object = None, *, strings: bool = True) -> Any:
        """Scrub one OTel attribute value; a JSON string that `json_schema` marks as an object/array is decoded.

        logfire sends dicts and lists as JSON strings and marks them in `logfire.json_schema`; Logfire's backend
        parses them back (so `attributes->'gen_ai.input.messages'->0` works), and so does the store.

        With `strings=False` only sensitive keys are redacted: for a caller that scrubs the text it finally writes
        in one pass (see `_spool.span_to_line`), which is much cheaper than one pass per string.
        """
        redacted = self._redacted(key)
        if redacted is not None:
            return redacted
        if isinstance(value, str):
            # One pass over the JSON text is much cheaper than one per string inside it; the patterns never
            # consume quotes or backslashes, so the text stays valid JSON.
            text = self.scrub_text(value) if strings else value
            if not (isinstance(json_schema, dict) and cast('dict[str, Any]', json_schema).get('type') in _JSON_TYPES):
                return text
            try:
                decoded = from_json(text)
            except ValueError:
                return text
            # No sensitive key anywhere in the text: nothing to walk.
            return self._redact_keys(decoded) if self._may_hold_key(text) else decoded
        if not strings:
            return self._redact_keys(_plain_json(value))
        return self.scrub_value(value)  # OTel tuples, or already-decoded data (e.g. read back from the store)

    def scrub_attributes(
        self, attributes: Mapping[str, Any], json_schema: Mapping[str, Any] | None = None, *, strings: bool = True
    ) -> dict[str, Any]:
        """Scrub span attributes (see `scrub_attribute`); `json_schema` is the `properties` of `logfire.json_schema`."""
        schema = json_schema or {}
        return {
            key: self.scrub_attribute(key, value, schema.get(key), strings=strings) for key, value in attributes.items()
        }


def _plain_json(value: Any) -> Any:
    # OTel attribute values are scalars or tuples of scalars.
    return list(cast('Sequence[Any]', value)) if isinstance(value, tuple) else value


def scrub_case_result(result: CaseResult, scrubber: SecretScrubber) -> CaseResult:
    """Remove secrets, in place, from what a case's result took from the task and its evaluators; returns it.

    Every result passes here before it is journaled, reported or shown (see `_run.run_cases`): the case's inputs,
    expected output, output and metadata (sensitive keys redacted, secrets in strings replaced), and the failure
    messages, error, evaluator reasons and string values. Names and node ids are the user's own and are kept.
    """
    text = scrubber.scrub_text
    result.inputs = scrubber.scrub_value(result.inputs)
    result.expected_output = scrubber.scrub_value(result.expected_output)
    result.output = scrubber.scrub_value(result.output)
    result.metadata = scrubber.scrub_value(result.metadata)
    result.failures = [text(f) for f in result.failures]
    if result.error is not None:
        result.error = {k: text(v) for k, v in result.error.items()}
    result.evaluator_failures = [{k: text(v) for k, v in f.items()} for f in result.evaluator_failures]
    for values in (result.assertions, result.scores, result.labels):
        for value in values.values():
            if value.reason:
                value.reason = text(value.reason)
            if isinstance(value.value, str):
                value.value = text(value.value)
    return result
