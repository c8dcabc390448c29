"""Record and replay of model HTTP traffic, one cassette per eval case.

How it works:

* `use_cassette()` routes the model HTTP traffic of the current task to one case's cassette (see `run.replay_http`
  for the hooks in httpx/httpcore that do the routing, per task, so that concurrent cases never share a cassette).
* Storage, record modes and matching are vcrpy's, used as a library: its `Cassette` (record-mode rules, play counts,
  re-recording in `all` mode), its `Request`, its matchers (the `body` matcher compares JSON bodies parsed, so key
  order and whitespace don't matter) and its cassette file layout (`version: 1`, `interactions:` of
  `request`/`response`), so the files stay readable by vcrpy and pytest-recording. `run.cassette` adds a serializer
  that pretty-prints JSON bodies as YAML block text, a persister that writes atomically and reports corrupt files,
  and the scrubbing of secrets.
* A request with no recorded match that the mode forbids to go live is the case's `CassetteMiss`, with the closest
  recorded request as a diff; `ReplayStats` says on the case's result where its traffic came from.
* `rescore_replay` is the cassette policy of a re-scoring run, whose tasks are not called but whose judges are.

Record modes (vcrpy's / pytest-recording's meanings):

* `none`: replay only; a request with no recorded match is an error and never reaches the network.
* `once`: record when the cassette file doesn't exist; replay only when it does (a new request is an error).
* `new`: replay what matches, record what doesn't (vcrpy's `new_episodes`).
* `all`: always call the provider and re-record (interactions recorded again replace their old versions).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args
from urllib.parse import urlsplit, urlunsplit

from ..results.case import CaseResult
from ..settings.values import RecordMode
from .cassette import (
    SCRUBBED,
    CassetteMiss,
    CassettePersister,
    CassetteScrubber,
    CassetteSerializer,
    CorruptCassette,
    ReplayError,
    cassette_path,
    recorded_at,
)
from .replay_http import REPLAYED_ATTRIBUTE, Recorded, install, routed_to
from .request_digest import digests_agree, unscrubbed_body, with_body
from .vcrpy import vcr

if TYPE_CHECKING:
    from ..collect.items import SuiteRuntime
    from ..settings.values import Settings

__all__ = (
    'RECORD_MODES',
    'REPLAYED_ATTRIBUTE',
    'CassetteMiss',
    'CorruptCassette',
    'RecordMode',
    'ReplayConfig',
    'ReplayError',
    'ReplayStats',
    'cassette_path',
    'install',
    'rescore_replay',
    'use_cassette',
)

RECORD_MODES: tuple[RecordMode, ...] = get_args(RecordMode)

_LOOPBACK = frozenset({'127.0.0.1', 'localhost', '::1', '[::1]'})


def port_unless_loopback(r1: Any, r2: Any) -> None:
    """vcrpy matcher: ports must be equal, except on a loopback host, where a local server (a test double, a local
    model server) usually listens on an ephemeral port that changes from run to run."""
    if r1.host in _LOOPBACK and r2.host in _LOOPBACK:
        return
    vcr().matchers.port(r1, r2)


# Matching: method, URL (query order-insensitive) and body (JSON compared parsed), all scrubbed, and the digest of the
# unscrubbed body (what the scrubber took counts too). Headers are left out on purpose: they carry volatile values
# (user agent, retry count, SDK versions) and secrets, which are scrubbed.
def _match_on() -> tuple[Any, ...]:
    matchers = vcr().matchers
    return (
        matchers.method,
        matchers.scheme,
        matchers.host,
        port_unless_loopback,
        matchers.path,
        matchers.query,
        matchers.body,
        unscrubbed_body,
    )


@dataclass
class ReplayStats:
    """What happened to one case's model traffic; the plugin reads it after the case ran."""

    case: str
    path: Path
    mode: RecordMode
    replayed: int = 0
    """Requests answered from the cassette (no network, no cost)."""
    live: int = 0
    """Requests that went to the provider."""
    recorded: int = 0
    """Live requests added to the cassette."""
    misses: list[CassetteMiss] = field(default_factory=list[CassetteMiss])
    """Requests refused because they had no recorded match (the first one is the case's error)."""
    recorded_at: str | None = None
    """When the cassette file was recorded (its `recorded_at`, else its modification time), if it existed."""

    def stamp(self, result: CaseResult) -> None:
        """Say on a case's result where its model traffic came from: replayed or not, which cassette, when."""
        result.replayed = self.is_replayed
        result.cassette = _display_path(self.path)
        result.recorded_at = self.recorded_at if self.is_replayed else None

    @property
    def is_replayed(self) -> bool:
        """True when the case made model requests and every one of them was replayed."""
        return self.replayed > 0 and self.live == 0

    @property
    def error(self) -> CassetteMiss | None:
        """The first miss, if any: the reason to mark the case as an error."""
        return self.misses[0] if self.misses else None


# --------------------------------------------------------------------------------------------------------------------
# The active cassette of a case


@functools.lru_cache(maxsize=8)
def _scrubber_for(patterns: tuple[str, ...]) -> CassetteScrubber:
    # Built once per pattern set: it compiles regexes and scans the environment for secret values.
    return CassetteScrubber(patterns)


class _CaseCassette:
    def __init__(
        self,
        load: Callable[[], Any],
        persister: CassettePersister,
        stats: ReplayStats,
        scrubber: CassetteScrubber,
        file_existed: bool,
    ) -> None:
        # A case with no cassette file usually makes no HTTP request at all (offline models): load on first use.
        self._load = load
        self._cassette: Any = load() if file_existed else None
        self.persister = persister
        self.stats = stats
        self.scrubber = scrubber
        self.file_existed = file_existed
        # Cassette methods are synchronous (atomic within one event loop); the lock covers sync clients in threads.
        self.lock = threading.Lock()

    @property
    def cassette(self) -> Any:
        if self._cassette is None:
            self._cassette = self._load()
        return self._cassette

    def save(self) -> None:
        if self._cassette is not None:
            self._cassette._save()  # pyright: ignore[reportPrivateUsage]  # vcrpy's own exit path; saves only when dirty

    def request(self, method: str, uri: str, body: bytes, headers: dict[str, str]) -> Any:
        """A request as vcrpy matches and stores it, able to digest its unscrubbed body when a match needs it."""
        with self.lock:
            _ = self.cassette  # loaded first: a digest is made under the salt of the cassette's file, if it has one
            salt = self.persister.salt
        return with_body(vcr().Request(method, uri, body, headers), salt, body)

    def lookup(self, request: Any) -> Recorded | None:
        """The recorded response for `request`, or `None` when it must go live; raises `CassetteMiss` if forbidden."""
        with self.lock:
            if self.cassette.can_play_response_for(request):
                response = cast(dict[str, Any], self.cassette.play_response(request))
                self.stats.replayed += 1
                return _to_recorded(response)
            if self.cassette.write_protected:
                miss = CassetteMiss(self._miss_message(request))
                self.stats.misses.append(miss)
                raise miss
            self.stats.live += 1
        return None

    def record(self, request: Any, live: Recorded) -> None:
        """Add a live response to the cassette, scrubbed (saved when the case ends)."""
        grouped: dict[str, list[str]] = {}
        for name, value in live.headers:
            grouped.setdefault(name.decode('latin-1'), []).append(value.decode('latin-1'))
        response = {
            'status': {'code': live.status, 'message': live.reason.decode('latin-1')},
            'headers': grouped,
            'body': {'string': live.body},
        }
        # A secret the request carried (a key, a token) may come back in the answer: not stored either.
        response = self.scrubber.response(response, self.scrubber.request_secrets(request))
        with self.lock:
            before = len(self.cassette)
            self.cassette.append(request, response)
            self.stats.recorded += len(self.cassette) - before

    def _miss_message(self, request: Any) -> str:
        stats = self.stats
        if not self.file_existed:
            why = f'no cassette at {stats.path}'
        else:
            why = f'no unplayed recorded response matches in {stats.path}'
        lines = [
            f'case {stats.case!r}: {why} (record mode {stats.mode!r}, so no network call was made)',
            f'  unmatched request: {request.method} {self.scrubber.uri(request.uri)}',
        ]
        closest = self._closest(request)
        if closest is not None:
            index, recorded = closest
            scrubbed_away = not digests_agree(recorded, request)
            diff = list(
                difflib.unified_diff(
                    _describe(recorded).splitlines(),
                    _describe(self.scrubber.request(request)).splitlines(),
                    fromfile=f'recorded request #{index + 1}',
                    tofile='this request',
                    lineterm='',
                    n=2,
                )
            )
            if len(diff) > 60:
                diff = [*diff[:60], f'... ({len(diff) - 60} more diff lines)']
            # Values stored scrubbed can't be shown: the cassette keeps only a digest of them, and this request's
            # may be secret.
            scrubbed_note = (
                f'values the cassette stores as {SCRUBBED} (the text after a sensitive word such as cookie:, '
                'session:, token:, or a secret)'
            )
            if diff:
                lines.append('  closest recorded request differs:')
                lines.extend(f'    {line}' for line in diff)
                if scrubbed_away:
                    lines.append(f'    and in {scrubbed_note}')
            elif scrubbed_away:
                lines.append(f'  closest recorded request #{index + 1} differs only in {scrubbed_note}')
            else:
                lines.append('  closest recorded request (already played):')
        hint = 'new' if stats.mode in ('none', 'once') else 'all'
        lines.append(f'  to record it, run with --evaltrace-record={hint} (needs the provider API key)')
        return '\n'.join(lines)

    def _closest(self, request: Any) -> tuple[int, Any] | None:
        recorded = cast(list[Any], self.cassette.requests)
        if not recorded:
            return None
        scrubbed = self.scrubber.request(request)
        described = _describe(scrubbed)

        def score(item: tuple[int, Any]) -> tuple[int, float]:
            successes, _ = vcr().matchers.get_matchers_results(scrubbed, item[1], _match_on())
            ratio = difflib.SequenceMatcher(None, _describe(item[1]), described).ratio()
            return len(cast(list[str], successes)), ratio

        return max(enumerate(recorded), key=score)


def _display_path(path: Path) -> str:
    # Relative to the working directory (pytest's rootdir, usually) when under it: the report is shared.
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _describe(request: Any) -> str:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    with contextlib.suppress(ValueError):
        body = json.dumps(json.loads(body), indent=2, sort_keys=True, ensure_ascii=False) if body else ''
    uri = str(request.uri)
    parts = urlsplit(uri)
    if parts.hostname in _LOOPBACK and parts.port is not None:
        # The port of a loopback host is not matched (see `port_unless_loopback`): a diff showing it would mislead.
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rsplit(':', 1)[0] + ':<port>'))
    return f'{request.method} {uri}\n{body}'


def _to_recorded(response: dict[str, Any]) -> Recorded:
    body = response['body']['string']
    if isinstance(body, str):
        body = body.encode('utf-8')
    body = cast(bytes, body or b'')
    headers: list[tuple[bytes, bytes]] = []
    for name, values in cast(dict[str, list[str]], response['headers']).items():
        lowered = name.lower()
        # The stored body is decoded and may be re-formatted: framing headers are recomputed.
        if lowered in ('content-length', 'transfer-encoding', 'content-encoding'):
            continue
        headers.extend((name.encode('latin-1'), str(v).encode('latin-1')) for v in values)
    headers.append((b'content-length', str(len(body)).encode()))
    message = cast(str | None, response['status'].get('message')) or ''
    return Recorded(int(response['status']['code']), headers, body, message.encode('latin-1'))


@contextlib.contextmanager
def use_cassette(
    path: str | Path,
    *,
    mode: RecordMode = 'once',
    case: str | None = None,
    scrub_patterns: Sequence[str] = (),
) -> Generator[ReplayStats]:
    """Route the model HTTP traffic of the current task (and the tasks it starts) to one cassette.

    Loads the cassette on entry and saves it on exit (when something was recorded). Requires `install()`.

    Args:
        path: the cassette file, see `cassette_path`.
        mode: `none`, `once`, `new` or `all` (see the module docstring).
        case: the case name used in error messages (default: the file stem).
        scrub_patterns: extra regular expressions whose matches are replaced before anything is stored.

    Raises:
        CorruptCassette: the file exists but can't be read; the message names the file.
        ValueError: an unknown mode or an invalid pattern.
    """
    if mode not in RECORD_MODES:
        raise ValueError(f'unknown record mode {mode!r}; expected one of {", ".join(RECORD_MODES)}')
    install()
    path = Path(path)
    scrubber = _scrubber_for(tuple(scrub_patterns))
    file_existed = path.is_file()

    persister = CassettePersister()

    def load() -> Any:
        return vcr().Cassette.load(
            path=str(path),
            serializer=CassetteSerializer(scrubber),
            persister=persister,
            record_mode=vcr().record_modes[mode],
            match_on=_match_on(),
            before_record_request=scrubber.request,
            before_record_response=scrubber.response,
        )

    stats = ReplayStats(case=case or path.stem, path=path, mode=mode)
    if file_existed:
        stats.recorded_at = recorded_at(path)
    active = _CaseCassette(load, persister, stats, scrubber, file_existed)
    try:
        with routed_to(active):
            yield stats
    finally:
        active.save()


@dataclass(frozen=True)
class ReplayConfig:
    """Record/replay of model HTTP traffic for a suite run: the mode and where each case's cassette lives."""

    mode: RecordMode
    root: Path
    scrub_patterns: tuple[str, ...] = ()

    def cassette(self, suite_id: str, case_name: str, repeat: int | None) -> Path:
        module, _, function = suite_id.partition('::')
        return cassette_path(self.root, Path(module).stem, function, case_name, repeat)


def rescore_replay(settings: Settings, runtime: SuiteRuntime, suite_id: str) -> ReplayConfig | None:
    """The cassettes of a re-scoring run (`evaltrace rescore`), where the tasks are not called but the evaluators
    are: an LLM judge's requests are replayed from the cases' cassettes, so a run whose judge traffic was recorded is
    re-scored offline.

    With recording on (the `record` setting or the suite's), its mode applies (`new` records what a changed rubric
    asks); else, when the suite has cassettes, `none`: a judge request that was not recorded is that case's
    `CassetteMiss`, never a network call. A suite with no cassette and recording off calls its judge live.
    """
    from ..settings.values import suite_record_mode

    mode = suite_record_mode(settings, runtime.spec.record)
    if mode is None:
        module, _, function = suite_id.partition('::')  # the suite run's id, as its cases' cassettes use
        folder = cassette_path(settings.cassettes, Path(module).stem, function, 'case').parent
        if not folder.is_dir() or not any(folder.glob('*.yaml')):
            return None
        mode = 'none'
    return ReplayConfig(mode, settings.cassettes, settings.scrub_patterns)
