"""Provider faults: retries with backoff (one owner, never multiplied), a shared rate limit, abandonable sync tasks.

Retries. Provider SDKs already retry (the OpenAI, Anthropic and Groq clients are Stainless SDKs: 2 retries by
default, exponential backoff, `Retry-After` honoured up to 2 minutes), but invisibly and without a bound on the total
wait. evaltrace owns retrying instead, one layer below the SDK, in `AsyncClient.send` of `httpx2` and `httpx`,
only inside eval cases:

* it retries 408, 409, 429 and 5xx answers, connection errors (refused, reset) and timeouts, with exponential
  backoff (0.5 s doubling, at most 8 s each, jittered) or the server's `Retry-After` / `retry-after-ms`;
* bounded by `retry_attempts` attempts per request and `retry_max_delay` seconds of waiting in total;
* each wait is a span `evaltrace retry …` in the case's trace (and each attempt its own httpx span);
* to compose with the SDK instead of multiplying attempts: the final failed answer carries `x-should-retry: false`,
  which Stainless SDKs obey, so they don't retry it again; and attempts are counted per logical request (the SDK's
  `Idempotency-Key`, else the task and URL of a request marked `x-stainless-retry-count`), so an SDK retry after a connection error finds the budget
  spent and fails at once, without reaching the provider. The provider never sees more than `retry_attempts`
  attempts. Setting the model's `max_retries=0` (pydantic-ai `ModelSettings`) also removes the SDK's own sleep.

Rate limits. `rate_limit_rpm` / `rate_limit_tpm` give each model (the `model` field of the request body) a token
bucket shared by every case running in the process (one scheduler serves them all); a request waits for its share before it is sent (the
wait is a span). Tokens per request are estimated from the request size (4 bytes a token).

Sync tasks. pydantic-evals runs a sync task with `anyio.to_thread.run_sync`, which cannot be cancelled: a hung task
would hang the per-case timeout. `run_in_thread` runs it in a daemon thread instead, and a timeout abandons it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json
import random
import threading
import time
import weakref
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import logfire

from ..names import REPLAYED_ATTRIBUTE

__all__ = (
    'REPLAYED_RESPONSE',
    'FaultPolicy',
    'RateLimiter',
    'enter_provider_faults',
    'install',
    'parse_retry_after',
    'provider_faults',
    'retry_delay',
    'run_in_thread',
)

RETRY_STATUSES = frozenset({408, 409, 429})
REPLAYED_RESPONSE = REPLAYED_ATTRIBUTE
"""The httpx response extension that marks an answer replayed from a cassette (set by _replay_http)."""
BASE_DELAY_S = 0.5
MAX_SINGLE_DELAY_S = 8.0


class _Raised(Exception):
    """Carries a `BaseException` that is not an `Exception` (`GeneratorExit`, `SystemExit`...) across the future."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


async def run_in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` in a daemon thread (with the caller's context); cancelling the await abandons the thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                # The task wakes up by `coro.throw(exception)`, and a thrown GeneratorExit is not passed down an
                # await chain: Python closes every awaiting frame below with a bare GeneratorExit instead, and
                # the original reaches the scheduler, past the case. Wrapped, it is raised again in this frame.
                future.set_exception(value if isinstance(value, Exception) else _Raised(value))

    def target() -> None:
        try:
            value = ctx.run(fn, *args, **kwargs)
        except BaseException as e:  # handed to the awaiting task, like any task exception
            outcome: tuple[bool, Any] = (False, e)
        else:
            outcome = (True, value)
        with contextlib.suppress(RuntimeError):  # the loop closed: the case was abandoned (timeout, interrupt)
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=target, name=f'evaltrace-task-{getattr(fn, "__name__", "task")}', daemon=True).start()
    try:
        return await future
    except _Raised as e:
        raise e.error from None


@dataclass(frozen=True)
class FaultPolicy:
    """How provider requests inside eval cases are retried and rate-limited."""

    attempts: int = 4
    max_delay_s: float = 30.0
    rpm: float = 0.0
    tpm: float = 0.0

    @property
    def active(self) -> bool:
        return self.attempts > 1 or self.rpm > 0 or self.tpm > 0


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if given."""
    for name, divisor in (('retry-after-ms', 1000.0), ('retry-after', 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def retry_delay(retry: int, retry_after: float | None) -> float:
    """The wait before retry number `retry` (0-based): the server's word, else jittered exponential backoff."""
    if retry_after is not None:
        return retry_after
    return min(BASE_DELAY_S * 2.0**retry, MAX_SINGLE_DELAY_S) * (1 - 0.25 * random.random())


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.capacity = per_minute
        self.rate = per_minute / 60.0
        self.tokens = per_minute
        self.last = time.monotonic()

    def wait_for(self, amount: float) -> float:
        """Take `amount` if available (returns 0), else the seconds until it will be."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        amount = min(amount, self.capacity)
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate


@dataclass
class RateLimiter:
    """Requests- and tokens-per-minute buckets per model, shared by every concurrent case of the process."""

    rpm: float = 0.0
    tpm: float = 0.0
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict[tuple[str, str], _Bucket])

    async def acquire(self, model: str, tokens: float) -> float:
        """Wait until `model` may send a request of about `tokens` tokens; returns the seconds waited."""
        waited = 0.0
        for kind, limit, amount in (('rpm', self.rpm, 1.0), ('tpm', self.tpm, tokens)):
            if limit <= 0:
                continue
            bucket = self._buckets.setdefault((kind, model), _Bucket(limit))
            while (delay := bucket.wait_for(amount)) > 0:
                await asyncio.sleep(delay)
                waited += delay
        return waited


@dataclass
class _Budget:
    attempts_left: int
    delay_left: float
    exhausted: bool = False
    last_error: BaseException | None = None


@dataclass
class _Scope:
    policy: FaultPolicy
    limiter: RateLimiter | None
    _budgets: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[str, _Budget]] = field(
        default_factory=weakref.WeakKeyDictionary[asyncio.Task[Any], dict[str, _Budget]]
    )

    @property
    def budgets(self) -> dict[str, _Budget]:
        """The retry budgets of the running task's logical requests.

        Kept per task, since the SDK retries a request inline, in the task that sent it: a budget never outlives its
        task, and a later task that happens to reuse its id (in a scope shared by the whole process) starts afresh.
        """
        task = asyncio.current_task()
        if task is None:
            return {}
        budgets = self._budgets.get(task)
        if budgets is None:
            budgets = self._budgets[task] = {}
        return budgets


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar('evaltrace_provider_faults', default=None)


def enter_provider_faults(policy: FaultPolicy) -> None:
    """Retry and rate-limit provider requests made from now on in this context, and every context copied from it.

    The scheduler calls it once in its loop's thread, so that one rate limiter per provider and model serves every
    case in the process, whatever its suite.
    """
    if policy.active:
        install()
        limiter = RateLimiter(policy.rpm, policy.tpm) if policy.rpm > 0 or policy.tpm > 0 else None
        _SCOPE.set(_Scope(policy, limiter))


@contextmanager
def provider_faults(policy: FaultPolicy) -> Generator[None]:
    """Retry and rate-limit provider requests made in this context (tasks started in it inherit it)."""
    if not policy.active:
        yield
        return
    install()
    limiter = RateLimiter(policy.rpm, policy.tpm) if policy.rpm > 0 or policy.tpm > 0 else None
    token = _SCOPE.set(_Scope(policy, limiter))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _model_and_tokens(request: Any) -> tuple[str, float]:
    try:
        body: bytes = request.content
    except Exception:  # a streaming body that was not read: no model name, no estimate
        return request.url.host or '?', 0.0
    model = request.url.host or '?'
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        name = payload.get('model')  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(name, str):
            model = name
    return model, len(body) / 4.0


def _logical_request_key(request: Any) -> str | None:
    """Identifies one logical request across the SDK's own retries: its idempotency key, else task and URL."""
    key = request.headers.get('idempotency-key')
    if key:
        return str(key)
    if 'x-stainless-retry-count' not in request.headers:
        return None
    task = asyncio.current_task()
    return f'{id(task)}:{request.method}:{request.url}'


def _retryable_request(request: Any) -> bool:
    if request.method in ('GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'):
        return True
    headers = request.headers
    return 'idempotency-key' in headers or 'x-stainless-retry-count' in headers


def _is_transport_error(e: BaseException) -> bool:
    # httpx and httpx2 share the class names; TransportError covers connect/read errors and timeouts.
    return any(c.__name__ in ('TransportError', 'TimeoutException') for c in type(e).__mro__)


def _fault_name(e: BaseException) -> str:
    text = str(e) or type(e).__doc__ or ''
    return f'{type(e).__name__}: {text.strip().splitlines()[0] if text.strip() else "(no detail)"}'


async def _send(scope: _Scope, original: Any, client: Any, request: Any, kwargs: dict[str, Any]) -> Any:
    policy = scope.policy
    model, tokens = _model_and_tokens(request)
    key = _logical_request_key(request)
    sdk_retry = request.headers.get('x-stainless-retry-count', '0') != '0'
    budget = scope.budgets.get(key) if key and sdk_retry else None
    if budget is None:
        attempts = policy.attempts if _retryable_request(request) else 1
        budget = _Budget(attempts, policy.max_delay_s)
        if key:
            scope.budgets[key] = budget
    if budget.exhausted and budget.last_error is not None:
        # The SDK retrying what evaltrace already retried: fail at once, the provider is not asked again.
        raise budget.last_error
    retry = 0
    while True:
        if scope.limiter is not None:
            started = time.monotonic()
            waited = await scope.limiter.acquire(model, tokens)
            if waited > 0:
                logfire.info(
                    'evaltrace rate limit: waited {waited_s:.2f} s for {model}',
                    waited_s=time.monotonic() - started,
                    model=model,
                )
        error: BaseException | None = None
        response: Any = None
        try:
            response = await original(client, request, **kwargs)
        except Exception as e:
            if not _is_transport_error(e):
                raise
            error = e
            fault = _fault_name(e)
        else:
            status = int(response.status_code)
            if status not in RETRY_STATUSES and status < 500:
                if key:
                    scope.budgets.pop(key, None)
                return response
            fault = f'HTTP {status}'
        budget.attempts_left -= 1
        retry_after = parse_retry_after(response.headers) if response is not None else None
        delay = retry_delay(retry, retry_after)
        # A replayed answer: the provider is not asked again, so there is nothing to wait for.
        replayed = response is not None and bool(response.extensions.get(REPLAYED_RESPONSE))
        if budget.attempts_left <= 0 or delay > budget.delay_left:
            budget.exhausted = True
            budget.last_error = error
            if response is not None:
                if key:
                    scope.budgets.pop(key, None)
                # Stainless SDKs (OpenAI, Anthropic, Groq) obey this header: evaltrace has already retried.
                response.headers['x-should-retry'] = 'false'
                return response
            assert error is not None
            raise error
        if response is not None:
            await response.aclose()
        retry += 1
        with logfire.span(
            'evaltrace retry {attempt} after {fault}',
            attempt=retry + 1,
            fault=fault,
            delay_s=round(delay, 3),
            retry_after_s=retry_after,
            model=model,
            replayed=replayed,
            _tags=['evaltrace.retry'],
        ):
            if not replayed:
                await asyncio.sleep(delay)
        budget.delay_left -= delay


_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Hook `AsyncClient.send` of httpx2 and httpx (whichever are installed). Idempotent; inert outside cases."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for module_name in ('httpx2', 'httpx'):
            try:
                module = __import__(module_name)
            except ImportError:
                continue
            _patch(module.AsyncClient)
        _installed = True


def _patch(client_cls: Any) -> None:
    original = client_cls.send

    async def send(self: Any, request: Any, **kwargs: Any) -> Any:
        scope = _SCOPE.get()
        if scope is None:
            return await original(self, request, **kwargs)
        return await _send(scope, original, self, request, kwargs)

    send.__wrapped__ = original  # type: ignore[attr-defined]
    client_cls.send = send
