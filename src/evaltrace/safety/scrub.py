"""One scrubber for everything that leaves the process: cassettes, the trace store, reports (JSON, HTML, JUnit,
markdown, step summary) and the terminal.

One set of patterns, in two layers:

- *key* patterns: logfire's default scrubbing patterns, taken from the installed logfire at run time (never a copy,
  which drifts from the version installed), plus `token` and `pwd` as whole words, plus the user's `scrub_patterns`.
  A value under a matching key (a span attribute, a JSON key, a header, a query parameter) is redacted whole, and
  in free text `password=hunter2`, `X-Custom-Secret: value` or `"api_key": "value"` loses its value;
- *value* shapes, wherever they sit: `Bearer ...` tokens and well-known credential prefixes (`sk-`, `AIza`, `AKIA`,
  `ghp_`, `github_pat_`, `hf_`, `xoxb-`, `pylf_v1_`, `gsk_`, `xai-`), every match of the user's `scrub_patterns`,
  and the values of the process's secret environment variables (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD`...).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from pydantic_core import from_json

from ..results.case import CaseResult
from .bounds import bound_text, bound_value

__all__ = (
    'SCRUBBED',
    'SecretScrubber',
    'env_secrets',
    'key_patterns',
    'logfire_key_patterns',
    'required_literal',
    'scrub_case_result',
    'start_chars',
)

SCRUBBED = '[Scrubbed]'
_CACHED_TEXT_CHARS = 4000
_CACHED_TEXTS = 4096
_JSON_TYPES = ('object', 'array')
_PLAIN_SCALARS = frozenset({int, float, bool, type(None)})
# Key names logfire leaves out of its defaults (a bare `token` would match `input_tokens`): whole words only, so
# `LOGFIRE_TOKEN`, `x-org-token` and `token=` match, `input_tokens`, `token_count` and `max_tokens` do not. They start
# with their literal (the look-behind comes after it), so the regex engine finds candidates by a fast literal scan.
_OWN_KEY_PATTERNS = (r'token(?<![a-z]token)(?![a-z_])', r'pwd(?<![a-z]pwd)(?![a-z_])')
# `_B` is a word boundary that also holds after a JSON escape (`\nsk-...` in JSON text is a newline before the key).
_B = r'(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf]))'
_SHAPES = (
    rf'(?P<scheme>{_B}(?:bearer|basic))\s+(?=[^\s"\']*[0-9=])[A-Za-z0-9\-._~+/]{{8,}}=*',
    rf'{_B}sk-[A-Za-z0-9_\-]{{16,}}',
    rf'{_B}AIza[0-9A-Za-z_\-]{{30,}}',
    rf'{_B}(?:gsk|xai)[_-][A-Za-z0-9]{{20,}}',
    rf'{_B}pylf_v\d+_[A-Za-z0-9_]{{10,}}',
    rf'{_B}hf_[A-Za-z0-9]{{30,}}',
    rf'{_B}gh[pousr]_[A-Za-z0-9]{{30,}}|{_B}github_pat_[A-Za-z0-9_]{{30,}}',
    rf'{_B}AKIA[0-9A-Z]{{16}}(?![A-Za-z0-9])',
    rf'{_B}xox[abprs]-[A-Za-z0-9-]{{10,}}',
)
# A lowercase substring of every `_SHAPES` match: a few C-speed `in` checks skip the regex for most strings.
_SHAPE_TRIGGERS = (
    'bearer', 'basic', 'sk-', 'aiza', 'gsk', 'xai', 'pylf_', 'hf_', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_',
    'github_pat_', 'akia', 'xox',
)  # fmt: skip
# The separator of a key and its value in free text: `k=v`, `k: v`, `"k": "v"`, `'k': 'v'`, `\"k\": \"v\"`. Not `::`,
# pytest's node id separator: `test_auth.py::test_login[x]` names a test, it holds no secret.
_SEP = r'(?P<sep>\\?["\']?\s*(?:=|:(?!:))\s*\\?["\']?)'
# A value worth scrubbing, not one scrubbed already (lowercase: see `_kv_pattern`): a quoted one whole, up to its
# closing quote (`password: "correct horse battery staple"`), else 6+ characters up to a delimiter, or any right
# after an equals sign (`password=abc12`, `?auth=7`): spaced or after a colon, a short word is more often prose
# (`password: reset`).
_KV_VALUE = (
    r'(?!\[scrubbed|<scrubbed>)'
    r'(?:(?<=")[^"\\\n]+(?=\\?")|(?<=\')[^\'\\\n]+(?=\\?\')'
    r'|(?:(?:bearer|basic)\s+)?[^\s"\'\\,;&}\]]{6,}'
    r'|(?<==)[^\s"\'\\,;&}\]]+)'
)
# Environment variables whose values are secrets, scrubbed wherever they appear (values of 8+ characters).
_SECRET_ENV_NAME = re.compile(
    r'(API_?KEY|ACCESS_KEY|SECRET_KEY|PRIVATE_KEY|_TOKEN|_SECRET|PASSWORD|PASSWD|_PWD)$', re.IGNORECASE
)


def logfire_key_patterns() -> tuple[str, ...]:
    """logfire's default scrubbing patterns, as the installed logfire defines them."""
    # Imported here: importing logfire costs ~1 s, which `evaltrace sql` / `show` (read-only) need not pay.
    from logfire._internal.scrubbing import DEFAULT_PATTERNS

    return tuple(DEFAULT_PATTERNS)


def key_patterns() -> tuple[str, ...]:
    """Every pattern of a sensitive key name: logfire's defaults, then evaltrace's own."""
    return (*logfire_key_patterns(), *_OWN_KEY_PATTERNS)


def env_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values of the secret-looking environment variables (8+ characters), longest first."""
    env = os.environ if environ is None else environ
    values = {v.strip() for k, v in env.items() if _SECRET_ENV_NAME.search(k) and len(v.strip()) >= 8}
    return tuple(sorted(values, key=len, reverse=True))


# --------------------------------------------------------------------------------------------------------------------
# Reading a pattern: a literal every match contains (for the `in` pre-check), and the characters a match starts with
# (for a look-ahead that lets the regex engine skip most positions at C speed). Both are derived from the patterns
# of the installed logfire; a pattern they cannot read makes them give up (None): the regex alone then decides.


def _sre(name: str) -> Any:
    # The standard library's own regex parser (Python 3.11+), typed as Any: it ships no public types.
    return importlib.import_module(f're._{name}')


def _parse(pattern: str) -> Any:
    try:
        return _sre('parser').parse(pattern, re.IGNORECASE)
    except Exception:
        return None


@functools.lru_cache(maxsize=512)  # every scrubber of a run (session, spool, page) reads the same patterns
def required_literal(pattern: str) -> str | None:
    """A lowercase ASCII substring (3+ characters) that every match of `pattern` contains, or None."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    literal = _sre('constants').LITERAL
    runs: list[str] = ['']
    for op, av in parsed:
        if op is literal and av < 128:
            runs[-1] += chr(av).lower()
        else:
            runs.append('')
    best = max(runs, key=len)
    return best if len(best) >= 3 else None


def _starts(items: Any) -> tuple[set[str], bool] | None:
    """The first characters of a sequence of parsed items, and whether it can match the empty string."""
    chars: set[str] = set()
    for op, av in items:
        one = _start_of(op, av)
        if one is None:
            return None
        chars |= one[0]
        if not one[1]:
            return chars, False
    return chars, True


def _start_of(op: Any, av: Any) -> tuple[set[str], bool] | None:
    k = _sre('constants')
    if op in (k.AT, k.ASSERT, k.ASSERT_NOT):
        return set(), True
    if op is k.LITERAL:
        return {chr(av)}, False
    if op is k.IN:
        chars: set[str] = set()
        for inner_op, inner_av in av:
            if inner_op is k.LITERAL:
                chars.add(chr(inner_av))
            elif inner_op is k.RANGE and inner_av[1] - inner_av[0] < 64:
                chars.update(chr(x) for x in range(inner_av[0], inner_av[1] + 1))
            else:
                return None
        return chars, False
    if op is k.SUBPATTERN:
        return _starts(av[-1])
    if op is k.BRANCH:
        union: set[str] = set()
        empty = False
        for branch in av[1]:
            one = _starts(branch)
            if one is None:
                return None
            union |= one[0]
            empty = empty or one[1]
        return union, empty
    if op in (k.MAX_REPEAT, k.MIN_REPEAT):
        low, _, sub = av
        one = _starts(sub)
        return None if one is None else (one[0], one[1] or low == 0)
    return None


def start_chars(patterns: Iterable[str]) -> str | None:
    """The characters (both cases) any match of any of `patterns` starts with, or None when unknown."""
    chars: set[str] = set()
    for pattern in patterns:
        parsed = _parse(pattern)
        one = None if parsed is None else _starts(parsed)
        if one is None or one[1]:
            return None
        chars |= one[0]
    return ''.join(sorted({ch for c in chars for ch in (c.lower(), c.upper())}))


_SHAPE_PATTERN = re.compile(f'(?=[{re.escape(start_chars(_SHAPES) or "")}])(?:{"|".join(_SHAPES)})', re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _kv_pattern(key: str, lowered: bool) -> re.Pattern[str]:
    """The free-text pattern of a value under `key` (`password=...`, `"api_key": "..."`, `X-Custom-Secret: ...`).

    One regex per key, run on the lowered text (same offsets as the text when it is ASCII) without IGNORECASE: a key
    that starts with a literal is then found by the engine's literal scan, ten times faster than an alternation of
    every key, or than any case-insensitive search.
    """
    flags = 0 if lowered and key == key.lower() else re.IGNORECASE
    return re.compile(rf'(?:{key})[\w.-]*{_SEP}{_KV_VALUE}', flags)


@functools.lru_cache(maxsize=256)
def _template_pattern(template: str) -> re.Pattern[str] | None:
    """A regex that matches what `template` formats to, each field a group named `<field>_<n>` (None: unparsable).

    A field's text is taken greedily, so that a value holding the text that follows it is taken whole.
    """
    parts: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    for n, (literal, field, _spec, _conversion) in enumerate(parsed):
        parts.append(re.escape(literal))
        if field is not None:
            name = re.match(r'[A-Za-z_]\w*', field)
            parts.append(f'(?P<{name.group(0)}_{n:03d}>.*)' if name else '.*')
    try:
        return re.compile(''.join(parts), re.DOTALL)
    except re.error:
        return None


@functools.lru_cache(maxsize=256)
def _template_fields(template: str) -> tuple[str, ...]:
    # `{name}`, `{name=}`, `{name!r}`, `{name:.2f}` and `{obj.attr}` name the field `name`; `{{` is a literal brace.
    return tuple(dict.fromkeys(re.findall(r'(?<!\{)\{([A-Za-z_]\w*)', template)))


def _contains_any(text: str, literals: Sequence[str]) -> bool:
    # A loop, not `any()` over a generator: this runs for most texts scrubbed, and the generator costs as much as
    # the C-speed scans themselves.
    for literal in literals:  # noqa: SIM110  (see above)
        if literal in text:
            return True
    return False


def _splice(text: str, spans: list[tuple[int, int]], replacement: str) -> str:
    """`text` with each span (merged where they overlap) replaced."""
    spans.sort()
    out: list[str] = []
    pos = 0
    end = -1
    for start, stop in spans:
        if start <= end:  # overlaps the span being built (two keys matched the same value)
            end = max(end, stop)
            continue
        if end >= 0:
            out.append(replacement)
            pos = end
        out.append(text[pos:start])
        pos, end = start, stop
    if end >= 0:
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return ''.join(out)


class SecretScrubber:
    """Removes secrets from what evaltrace writes: span data, case results, cassettes (see the module docstring).

    The spool's spans may or may not have been through logfire's scrubbing (on when logfire exports them, see
    `trace.tracing.setup_tracing`; absent for a logfire the user configured, whose spans reach evaltrace's processors
    unscrubbed), so this alone keeps credentials out of every file evaltrace writes. logfire's whole-value redaction
    of values that merely mention e.g. 'session' is not repeated here.

    `scrub_text` for a string, `scrub_value` for JSON-like data, `scrub_attributes` for a span's attributes,
    `is_secret_key` for a header or parameter name.
    """

    def __init__(
        self,
        extra_patterns: Sequence[str] = (),
        *,
        replacement: str = SCRUBBED,
        key_note: bool = True,
        environ: Mapping[str, str] | None = None,
        max_value_chars: int | None = None,
    ) -> None:
        """Compile the patterns.

        Args:
            extra_patterns: Regular expressions (Python syntax) of further secrets; matched case-insensitively.
            replacement: What a secret is replaced with (cassettes use `<scrubbed>`).
            key_note: Whether a value redacted for its key says which pattern matched (logfire's habit), or is
                simply `replacement`.
            environ: Where secret environment variables are read (default: the process's).
            max_value_chars: `scrub_case_result` first cuts each value of a result to this many characters of JSON
                (the `max_value_chars` setting; see `safety.bounds`), so that scrubbing never runs over more.

        Raises:
            ValueError: A pattern is not a valid regular expression (the message names it).
        """
        compiled: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as e:
                raise ValueError(f'invalid scrubbing pattern {pattern!r}: {e}') from None
        self.replacement = replacement
        self._key_note = key_note
        self._extra = compiled
        self.max_value_chars = max_value_chars
        from logfire._internal.scrubbing import BaseScrubber

        keys = key_patterns()
        # Each key pattern with the literal all its matches contain (None: unknown, the pattern always runs).
        self._kv_keys = tuple((k, required_literal(k)) for k in keys)
        self._key_pattern = re.compile('|'.join([*keys, *extra_patterns]), re.IGNORECASE)
        literals = [required_literal(p) for p in (*keys, *extra_patterns)]
        self._key_triggers = None if None in literals else tuple(cast(list[str], literals))
        self._safe_keys = frozenset(BaseScrubber.SAFE_KEYS)
        self._key_cache: dict[str, str | None] = {}
        self._attribute_keys: dict[str, tuple[str, str | None]] = {}
        """Each span attribute key seen: the key scrubbed, and the replacement of its value if the key is sensitive."""
        # Span names, attribute values and reasons repeat on every case: a short text is scrubbed once.
        self._scrub_short = functools.lru_cache(maxsize=_CACHED_TEXTS)(self._scrub_text)
        self._literals: tuple[str, ...] = ()
        self.add_literals(env_secrets(environ))

    def add_literals(self, values: Iterable[str]) -> None:
        """Scrub these exact values too, wherever they appear (for example, a token a request sent)."""
        merged = set(self._literals) | {v for v in values if len(v) >= 6}
        # Longest first, so a secret that contains another is replaced whole.
        self._literals = tuple(sorted(merged, key=len, reverse=True))
        self._scrub_short.cache_clear()  # what was scrubbed before may hold a new literal
        self._attribute_keys = {}

    def _replace_shape(self, match: re.Match[str]) -> str:
        if scheme := match.group('scheme'):
            return f'{scheme} {self.replacement}'
        return self.replacement

    def scrub_text(self, text: str) -> str:
        """Return `text` with every secret replaced."""
        # Each check scans the whole text, so even a short one costs dozens of scans: short texts are remembered.
        return self._scrub_short(text) if len(text) <= _CACHED_TEXT_CHARS else self._scrub_text(text)

    def _scrub_text(self, text: str) -> str:
        # `in` checks on the lowered text (C speed) decide which patterns can match at all; a non-ASCII text may
        # match a pattern case-insensitively without containing its literal, so it runs them all.
        lowered = text.lower() if text.isascii() else None
        spans = [
            (match.end('sep'), match.end())
            for key, literal in self._kv_keys
            if lowered is None or literal is None or literal in lowered
            for match in _kv_pattern(key, lowered is not None).finditer(text if lowered is None else lowered)
        ]
        if spans:
            text = _splice(text, spans, self.replacement)
        if lowered is None or _contains_any(lowered, _SHAPE_TRIGGERS):
            text = _SHAPE_PATTERN.sub(self._replace_shape, text)
        for literal in self._literals:
            if literal in text:  # a C-speed scan; most texts hold none
                text = text.replace(literal, self.replacement)
        for pattern in self._extra:
            text = pattern.sub(self.replacement, text)
        return text

    def is_secret_key(self, key: str) -> bool:
        """Whether the value under this key (attribute, JSON key, header, query parameter) is redacted whole."""
        return self._redacted(key) is not None

    def _may_hold_key(self, text: str) -> bool:
        """Whether a sensitive key may occur in `text` (no false negatives: the regex decides when unsure)."""
        if self._key_triggers is not None and text.isascii():
            lowered = text.lower()
            return _contains_any(lowered, self._key_triggers) and bool(self._key_pattern.search(text))
        return bool(self._key_pattern.search(text))

    def _redacted(self, key: str) -> str | None:
        """The replacement of the value under a sensitive key, else None (cached: keys repeat across spans)."""
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        match = None if key in self._safe_keys else self._key_pattern.search(key)
        redacted = None
        if match:
            # The note names the pattern that matched in the key, as logfire's does; never the value.
            redacted = f'[Scrubbed due to {match.group(0)!r}]' if self._key_note else self.replacement
        if len(self._key_cache) < 10_000:
            self._key_cache[key] = redacted
        return redacted

    def _attribute_key(self, key: str) -> tuple[str, str | None]:
        """An attribute key scrubbed, and the replacement of its value if the key is sensitive.

        The same few dozen keys come on every span: each is scrubbed and judged once.
        """
        keys = self._attribute_keys
        known = keys.get(key)
        if known is None:
            known = (self.scrub_text(key), self._redacted(key))
            if len(keys) < _CACHED_TEXTS:
                keys[key] = known
        return known

    def scrub_otel_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Span attributes scrubbed as OpenTelemetry values, for a span that leaves the process (see `safety.spans`).

        As `scrub_attributes`, but a JSON text stays text (its one pass of `scrub_text` keeps it valid JSON, and
        takes a quoted value after a sensitive key), a tuple of strings stays a tuple, and the message is scrubbed
        as `scrub_message`.
        """
        scrubbed: dict[str, Any] = {}
        for key, value in attributes.items():
            name, redacted = self._attribute_key(key)
            if redacted is not None:
                scrubbed[name] = redacted
            elif key == 'logfire.msg' and isinstance(value, str):
                scrubbed[name] = self.scrub_message(value, attributes.get('logfire.msg_template'), attributes)
            elif isinstance(value, str):
                scrubbed[name] = self.scrub_text(value)
            elif isinstance(value, tuple | list):
                items = cast('Sequence[Any]', value)
                scrubbed[name] = tuple(self.scrub_text(v) if isinstance(v, str) else v for v in items)
            else:
                scrubbed[name] = value
        return scrubbed

    def scrub_message(self, message: str, template: object, attributes: Mapping[str, Any]) -> str:
        """A span's message, formatted from `template` and `attributes`, without the values of its sensitive fields.

        logfire formats `logfire.info('login {password}', password=...)` into the message `login hunter2`, where the
        value no longer sits under its key (and logfire's scrubbing leaves it there). The message is matched against
        its template, and what stands where a sensitive field was formatted is replaced; a message that does not
        match is replaced by its template, which holds no value.
        """
        if isinstance(template, str) and '{' in template:
            fields = _template_fields(template)
            if any(self._redacted(name) is not None for name in fields if name in attributes):
                message = self._redact_fields(message, template)
        return self.scrub_text(message)

    def _redact_fields(self, message: str, template: str) -> str:
        pattern = _template_pattern(template)
        match = None if pattern is None else pattern.fullmatch(message)
        if match is None:
            return template
        # Group names are `<field>_<nnn>` (see `_template_pattern`).
        spans = [match.span(group) for group in match.groupdict() if self._redacted(group[:-4]) is not None]
        return _splice(message, spans, self.replacement) if spans else message

    def scrub_value(self, value: Any) -> Any:
        """Scrub JSON-like data (dicts, lists, tuples, scalars): sensitive keys and secrets in strings; a new value."""
        if type(value) in _PLAIN_SCALARS:  # most values: kept without the slow `Mapping` check of an ABC
            return value
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

    def scrub_attribute(self, key: str, value: Any, json_schema: object = None) -> Any:
        """Scrub one OTel attribute value; a JSON string that `json_schema` marks as an object/array is decoded.

        logfire sends dicts and lists as JSON strings and marks them in `logfire.json_schema`; Logfire's backend
        parses them back (so `attributes->'gen_ai.input.messages'->0` works), and so does the store.
        """
        redacted = self._redacted(key)
        return redacted if redacted is not None else self._scrub_kept_attribute(value, json_schema)

    def _scrub_kept_attribute(self, value: Any, json_schema: object) -> Any:
        # The value of an attribute whose key is not sensitive (see `scrub_attribute`).
        if isinstance(value, str):
            # One pass over the JSON text is much cheaper than one per string inside it; the patterns never
            # consume quotes or backslashes, so the text stays valid JSON.
            text = self.scrub_text(value)
            if not (isinstance(json_schema, dict) and cast('dict[str, Any]', json_schema).get('type') in _JSON_TYPES):
                return text
            try:
                decoded = from_json(text)
            except ValueError:
                return text
            # No sensitive key anywhere in the text: nothing to walk.
            return self._redact_keys(decoded) if self._may_hold_key(text) else decoded
        return self.scrub_value(value)  # OTel tuples, or already-decoded data (e.g. read back from the store)

    def scrub_attributes(
        self, attributes: Mapping[str, Any], json_schema: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Scrub span attributes, keys too (see `scrub_attribute`); `json_schema` is the `properties` of
        `logfire.json_schema`."""
        schema = json_schema or {}
        keys = self._attribute_keys
        scrubbed: dict[str, Any] = {}
        for key, value in attributes.items():
            name, redacted = keys.get(key) or self._attribute_key(key)  # the lookup inline: this runs for every span
            if redacted is not None:
                scrubbed[name] = redacted
            elif type(value) in _PLAIN_SCALARS:  # most values (usage, line numbers): only their key could redact them
                scrubbed[name] = value
            else:
                scrubbed[name] = self._scrub_kept_attribute(value, schema.get(key))
        return scrubbed


def scrub_case_result(result: CaseResult, scrubber: SecretScrubber) -> CaseResult:
    """Remove secrets, in place, from what a case's result took from the task and its evaluators; returns it.

    Every result passes here before it is journaled, reported or shown (see `run.case.run_case`): the case's inputs,
    expected output, output and metadata (sensitive keys redacted, secrets in strings replaced), and the failure
    messages, error, evaluator reasons and string values, and the attributes it set (`set_eval_attribute`) and the
    names of its metrics. Names and node ids are the user's own and are kept.
    """
    limit = scrubber.max_value_chars
    if limit is not None:  # cut before scrubbing: the regexes then never run over more than the bound
        _bound_case_result(result, limit)
    text = scrubber.scrub_text
    result.inputs = scrubber.scrub_value(result.inputs)
    result.expected_output = scrubber.scrub_value(result.expected_output)
    result.output = scrubber.scrub_value(result.output)
    result.metadata = scrubber.scrub_value(result.metadata)
    result.attributes = scrubber.scrub_value(result.attributes)  # `set_eval_attribute`: the task's own values
    result.metrics = {text(k): v for k, v in result.metrics.items()}  # numbers, under the task's own names
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


def _bound_case_result(result: CaseResult, limit: int) -> None:
    result.inputs = bound_value(result.inputs, limit)
    result.expected_output = bound_value(result.expected_output, limit)
    result.output = bound_value(result.output, limit)
    result.metadata = bound_value(result.metadata, limit)
    result.attributes = bound_value(result.attributes, limit)
    result.failures = [bound_text(f, limit) for f in result.failures]
    if result.error is not None:
        result.error = {k: bound_text(v, limit) for k, v in result.error.items()}
    result.evaluator_failures = [{k: bound_text(v, limit) for k, v in f.items()} for f in result.evaluator_failures]
    for values in (result.assertions, result.scores, result.labels):
        for value in values.values():
            if value.reason:
                value.reason = bound_text(value.reason, limit)
            if isinstance(value.value, str):
                value.value = bound_text(value.value, limit)
