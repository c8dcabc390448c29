"""Tracing: Logfire set-up, one trace per case, usage summed over each case's trace, no sampling of eval traces.

Each case runs pydantic-evals' `_run_task_and_evaluators` in an empty context, so its `case: …` span is the root of
the case's own trace (the suite run's experiment is a trace of its own, see _experiment). `UsageProcessor` adopts that span as it starts: it stamps the case's attributes on it, and
keeps its usage sums current while the case's model requests end. No span of evaltrace's own is added to a case.

Logfire is configured lazily, when the first suite runs, so a `logfire.configure()` made by the user in a conftest or
an eval module is seen and respected; evaltrace then only adds its span processors to the user's provider.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import tomllib
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import logfire
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.util.types import Attributes

from ..names import OPERATION_ATTRIBUTE, REPLAYED_ATTRIBUTE, ROOT_ATTRIBUTE, STATUS_ATTRIBUTE
from ..results.usage import CaseUsage, usage_attributes, usage_of_span
from ..safety.scrub import SecretScrubber
from ..safety.spans import ScrubbedSpans
from ..schedule.threads import token_check_as_daemon
from ..span_attributes import attributes_of
from .links import CREDENTIALS_FILE
from .telemetry import TelemetryHealth, WatchedExporter, bounded_flush, guard_exit, watch_exporters

__all__ = ('CaseTrace', 'TraceSetup', 'UsageProcessor', 'case_trace', 'readers_foreseen', 'setup_tracing')

JUDGE_SPAN_PREFIX = 'evaluator:'

_current_case: ContextVar[CaseTrace | None] = ContextVar('evaltrace_current_case', default=None)


@dataclass
class CaseTrace:
    """What the tracing layer learns about one case: its root span, its ids and its usage, split task / judge."""

    root_attributes: dict[str, Any] = field(default_factory=dict[str, Any])
    """Stamped on the root span when it starts."""
    trace_id: str | None = None
    span_id: str | None = None
    usage: CaseUsage = field(default_factory=CaseUsage)
    root: Span | None = field(default=None, repr=False)
    # span_id -> is the span inside an evaluator (judge) subtree
    judge_spans: dict[int, bool] = field(default_factory=dict[int, bool], repr=False)

    def stamp(self, attributes: dict[str, Any]) -> None:
        """Set attributes on the case's root span while it is live (not before it starts, nor after it ends)."""
        if self.root is not None and self.root.is_recording():
            self.root.set_attributes(attributes)


class UsageProcessor(SpanProcessor):
    """Adopts each case's root span, and sums the usage of its model-request spans, split into task and judge shares.

    The root is the first span without a parent that starts in a case's context (pydantic-evals' `case: …` span).
    A span belongs to the judge share when it sits under an evaluator span (`evaluator: …`, from pydantic-evals).
    Parents start before their children, so a span's share is known when it starts and looked up when it ends.
    The root's usage attributes are brought up to date as each model request ends: they are complete before the root
    itself ends, because pydantic-evals ends it after every span of the case.
    """

    def __init__(self) -> None:
        self._cases: dict[int, CaseTrace] = {}
        self._lock = threading.Lock()
        self.active = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.active:
            return
        ctx = span.get_span_context()
        if span.parent is None and (case := _current_case.get()) is not None and case.root is None:
            with self._lock:
                self._cases[ctx.trace_id] = case
            case.root = span
            case.trace_id = f'{ctx.trace_id:032x}'
            case.span_id = f'{ctx.span_id:016x}'
            case.judge_spans[ctx.span_id] = False
            span.set_attributes({**case.root_attributes, **usage_attributes(case.usage)})
            return
        case = self._cases.get(ctx.trace_id)
        if case is None:
            return
        parent = span.parent
        in_judge = case.judge_spans.get(parent.span_id, False) if parent is not None else False
        case.judge_spans[ctx.span_id] = in_judge or span.name.startswith(JUDGE_SPAN_PREFIX)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None:
            return
        case = self._cases.get(ctx.trace_id)
        if case is None:
            return
        attrs = attributes_of(span)
        if attrs.get(ROOT_ATTRIBUTE):
            with self._lock:
                self._cases.pop(ctx.trace_id, None)
            return
        usage = usage_of_span(attrs)
        if usage is not None:
            (case.usage.judge if case.judge_spans.get(ctx.span_id, False) else case.usage.task).add(usage)
            if attrs.get(REPLAYED_ATTRIBUTE):
                case.usage.replayed_cost_usd += usage.cost_usd
            case.stamp(usage_attributes(case.usage))

    def shutdown(self) -> None:
        self.active = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class EvalTraceSampler(Sampler):
    """Wraps the user's sampler so that eval-case traces, and each suite run's experiment (what Logfire's Evals tab
    lists), are always recorded, whatever sampling they configured."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self._forced: set[int] = set()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        is_root = not get_current_span(parent_context).get_span_context().is_valid
        if is_root and _current_case.get() is not None:
            self._forced.add(trace_id)  # a case's root (see UsageProcessor)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        if is_root and attributes and attributes.get(OPERATION_ATTRIBUTE) == 'experiment':
            # A suite run's experiment and its case spans; one trace per suite run, so the set stays small.
            self._forced.add(trace_id)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        if trace_id in self._forced:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def release(self, trace_id: int) -> None:
        self._forced.discard(trace_id)

    def get_description(self) -> str:
        return f'EvalTraceSampler({self.inner.get_description()})'


@dataclass
class TraceSetup:
    """The tracing state of one session."""

    usage: UsageProcessor
    configured_by_evaltrace: bool
    sampler: EvalTraceSampler | None = None
    extra_processors: list[SpanProcessor] = field(default_factory=list[SpanProcessor])
    telemetry: TelemetryHealth | None = None
    """Set by `close()`: whether spans reached the backend (see _telemetry)."""
    exported: bool = False
    """Whether spans reach a reader besides evaltrace's own local store: Logfire, an OTLP endpoint, a test exporter."""
    scrubbed: ScrubbedSpans | None = None
    """Scrubs what the exporters send (an exporter added later is wrapped with it when the next suite run starts, see
    `watch_new_exporters`, or at the end, see `close`)."""

    def watch_new_exporters(self) -> None:
        """Wrap the exporters added since the set-up (a later suite's fixture may add one), so that they too send
        scrubbed copies from now on, and note that spans are exported."""
        self.exported = _exported(watch_exporters(scrubbed=self.scrubbed)) or self.exported

    def close(self) -> None:
        """Flush spans (bounded) and make this session's processors inert."""
        # The local spool first, whole and in this thread: it is a file, not a backend, so it needs no budget, and
        # the HTML report reads it next. Left to the bounded flush below, a spool batch of large spans that took
        # longer than the budget (a loaded CI machine) was still being written, or lost, when the report read it.
        for processor in self.extra_processors:
            with contextlib.suppress(Exception):
                processor.force_flush()
        try:
            # A dead telemetry backend must not change the verdict nor hold the run: see _telemetry.
            self.telemetry = bounded_flush(watch_exporters(scrubbed=self.scrubbed))
            if not self.telemetry.healthy:
                guard_exit()
        except Exception:
            pass
        self.usage.active = False
        for p in self.extra_processors:
            p.shutdown()


# Attributes whose values are eval content (case names, node ids, inputs, outputs, evaluator results), set by
# evaltrace and pydantic-evals. logfire's default scrubbing redacts any value that merely *mentions* a word such
# as 'password' or 'auth' (a case named `password_reset`, a reply about "authorisation"), which would make cases
# unfindable in the trace store and outputs unreadable. Values under these keys are kept unless they hold
# something shaped like a credential; a key that is itself sensitive is still redacted.
_EVAL_CONTENT_KEYS = frozenset(
    {
        'case', 'suite', 'nodeid', 'dataset', 'case_name', 'task_name', 'name', 'inputs', 'output',
        'expected_output', 'metadata', 'assertions', 'scores', 'labels', STATUS_ATTRIBUTE,
        'task', 'evaluator_name', 'source_case_name', 'dataset_name',
    }
)  # fmt: skip
_CREDENTIAL_SHAPE = re.compile(r'sk-[A-Za-z0-9_-]{12,}|Bearer\s+[A-Za-z0-9._~+/=-]{12,}|AIza[0-9A-Za-z_-]{20,}')


def keep_eval_content(match: logfire.ScrubMatch) -> Any:
    """logfire scrubbing callback: keep eval content that only mentions a sensitive word (see above)."""
    path = match.path
    is_value_match = isinstance(match.value, str) and match.pattern_match.string == match.value
    if (
        is_value_match
        and len(path) >= 2
        and path[0] in ('attributes', 'message')
        and path[1] in _EVAL_CONTENT_KEYS
        and not _CREDENTIAL_SHAPE.search(match.value)
    ):
        return match.value
    return None


def _configure_logfire(service_name: str, environment: str, processors: list[SpanProcessor], *, scrub: bool) -> None:
    logfire.configure(
        # logfire does not send by default under pytest; eval traces should reach Logfire when a token is set.
        send_to_logfire='if-token-present',
        service_name=service_name,
        environment=environment,
        console=False,
        additional_span_processors=processors,
        scrubbing=logfire.ScrubbingOptions(callback=keep_eval_content) if scrub else False,
    )


# What makes the logfire evaltrace configures export spans: a token (this variable, `token` in `[tool.logfire]`, or
# the credentials file `logfire auth` / `logfire projects use` write in its data folder), or an OTLP endpoint.
_EXPORT_VARIABLES = ('LOGFIRE_TOKEN', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')


def readers_foreseen(environ: Mapping[str, str], cwd: Path) -> bool:
    """Whether the logfire evaltrace configures may export spans (no false negatives: unsure means yes).

    Read as logfire reads them: the variables, then `[tool.logfire]` of `pyproject.toml` in `LOGFIRE_CONFIG_DIR`
    (default the current folder), then `logfire_credentials.json` in `LOGFIRE_DATA_DIR` (default `.logfire`).
    """
    if any(environ.get(name) for name in _EXPORT_VARIABLES):
        return True
    config = cwd / environ.get('LOGFIRE_CONFIG_DIR', '.') / 'pyproject.toml'
    try:
        tool: Any = tomllib.loads(config.read_text(encoding='utf-8')).get('tool')
        if isinstance(tool, dict) and 'logfire' in tool:
            return True  # its settings may name a token or a data folder
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return True
    data_dir = cwd / (environ.get('LOGFIRE_DATA_DIR') or '.logfire')
    try:
        return (data_dir / CREDENTIALS_FILE).exists()
    except OSError:
        return True


def _logfire_is_configured() -> bool:
    # logfire exposes no public flag; `_initialized` is set by `logfire.configure()` (ours, the user's, or `--logfire`).
    return bool(getattr(logfire.DEFAULT_LOGFIRE_INSTANCE.config, '_initialized', False))


def _force_sampling() -> EvalTraceSampler | None:
    provider: Any = logfire.DEFAULT_LOGFIRE_INSTANCE.config.get_tracer_provider()
    sdk = getattr(provider, 'provider', None)
    sampler = getattr(sdk, 'sampler', None)
    if sdk is None or not isinstance(sampler, Sampler):
        return None
    if isinstance(sampler, EvalTraceSampler):
        return sampler
    if sampler.get_description() == 'AlwaysOnSampler':
        return None
    wrapped = EvalTraceSampler(sampler)
    sdk.sampler = wrapped
    # The SDK caches one tracer per instrumentation scope, each holding the sampler it was created with.
    for tracer in list(getattr(sdk, '_tracers', {}).values()):
        if getattr(tracer, 'sampler', None) is sampler:
            tracer.sampler = wrapped
    return wrapped


def setup_tracing(
    *,
    service_name: str,
    environment: str,
    instrument_pydantic_ai: bool,
    instrument_httpx: bool,
    extra_processors: Sequence[SpanProcessor] = (),
    scrubber: SecretScrubber | None = None,
) -> TraceSetup:
    """Configure Logfire unless the user did, and add evaltrace's span processors to the provider.

    Every exporter then sends copies of its spans scrubbed by `scrubber` (see `safety.spans`), whoever configured
    logfire.
    """
    scrubbed = ScrubbedSpans(scrubber or SecretScrubber())
    usage = UsageProcessor()
    processors: list[SpanProcessor] = [usage, *extra_processors]
    configured_by_us = not _logfire_is_configured()
    if configured_by_us:
        # logfire's scrubbing is for what it exports. With nothing to export to (offline, the default), evaltrace's
        # own processors are the spans' only readers: the local store's spool scrubs each span itself, as it does
        # the spans of a logfire the user configured (they reach it unscrubbed), and logfire's pass over every
        # attribute was half of evaltrace's cost per case.
        scrub = readers_foreseen(os.environ, Path.cwd())
        with token_check_as_daemon():
            _configure_logfire(service_name, environment, processors, scrub=scrub)
        if not scrub and _exported(watch_exporters(scrubbed=scrubbed)):  # not foreseen: logfire scrubs after all
            with token_check_as_daemon():
                _configure_logfire(service_name, environment, processors, scrub=True)
    else:
        provider: Any = logfire.DEFAULT_LOGFIRE_INSTANCE.config.get_tracer_provider()
        for p in processors:
            provider.add_span_processor(p)
    if instrument_pydantic_ai:
        logfire.instrument_pydantic_ai()
    if instrument_httpx:
        logfire.instrument_httpx()
    # Exporters are wrapped (circuit breakers, scrubbed copies) before any span is exported.
    exported = _exported(watch_exporters(scrubbed=scrubbed))
    return TraceSetup(
        usage, configured_by_us, _force_sampling(), list(extra_processors), exported=exported, scrubbed=scrubbed
    )


def _exported(watched: Sequence[WatchedExporter]) -> bool:
    """Whether spans reach a reader besides evaltrace's own (Logfire, an OTLP endpoint, a test exporter)."""
    return any(not type(w.inner).__module__.startswith('evaltrace.') for w in watched)


@contextmanager
def case_trace(name: str, attributes: dict[str, Any], setup: TraceSetup | None) -> Generator[CaseTrace]:
    """Run the block in an empty context, so that the next span it starts is the root of the case's own trace.

    That span (pydantic-evals' `case: {case_name}` span) is adopted by `UsageProcessor`, which stamps on it the
    case's attributes: `case`, `evaltrace.case`, the given ones, the usage sums, the tag `evaltrace`, and the message
    `case {name}`, which names the suite as well as the case. Its span name and its other attributes (inputs,
    output, scores...) are pydantic-evals' own.

    Yields the `CaseTrace`: ids and usage are filled in as the case runs, and `stamp` sets final attributes while
    the root is live.
    """
    case = CaseTrace(
        root_attributes={
            'logfire.msg': f'case {name}',
            'logfire.tags': ('evaltrace',),
            'case': name,
            ROOT_ATTRIBUTE: True,
            **attributes,
        }
    )
    case_token = _current_case.set(case)
    context_token = otel_context.attach(Context())
    try:
        yield case
    finally:
        otel_context.detach(context_token)
        _current_case.reset(case_token)
        if setup is not None and setup.sampler is not None and case.trace_id is not None:
            setup.sampler.release(int(case.trace_id, 16))
