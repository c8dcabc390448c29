"""The digest of a request's unscrubbed body, stored beside each recorded request so that a replay tells apart two
requests that scrub to the same text.

A cassette stores requests scrubbed, and matching compares scrubbed forms; but the scrubber also takes words that
are not secrets (the word after `cookie:` or `session:` in a prompt, a value under a JSON key named `auth_mode`), so
two prompts that differ only there would match the same recording and replay a stale answer. Each recorded request
therefore carries `request_digest`, an HMAC-SHA256 of its unscrubbed body, and a request matches a recording only
when their digests agree too.

The key is a random salt per cassette, stored in the cassette (`request_digest_salt`), and kept when the cassette is
recorded again (so an unchanged exchange keeps its digest and gives an empty diff). It is not a secret, and can't be:
replay runs on every machine that has the cassettes (CI, each contributor) with nothing else, so anything needed to
check a digest must travel with them; a key derived from the machine would not, one derived from the repository is
public anyway. What the salt does is keep digests from being compared across cassettes or looked up in precomputed
tables. What it can't do is stop someone holding the cassette from confirming a guess of a short scrubbed value
(the rest of the body is in the cassette): real credentials are long random strings and stay out of reach, but a
weak password typed into a prompt could be confirmed. Only the body is digested: the URL's secret query parameters
and the secret headers are credentials that differ from one machine to the next, and take no part in matching.

A recording with no digest (a cassette of an evaltrace from before digests) is matched on its scrubbed form alone,
as it was then; recording it again adds the digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

__all__ = (
    'DIGEST_KEY',
    'SALT_KEY',
    'body_digest',
    'digest_of',
    'new_salt',
    'unscrubbed_body',
    'valid_salt',
    'with_digest',
)

SALT_KEY = 'request_digest_salt'
"""The cassette's top-level key holding its salt (hex)."""
DIGEST_KEY = 'request_digest'
"""The key beside an interaction's `request` and `response` holding its request's digest; vcrpy ignores it."""
_ATTRIBUTE = 'evaltrace_request_digest'
"""Where a digest rides on a vcrpy `Request` (copies made by vcrpy and the scrubber keep it)."""
_SCHEME = 'hmac-sha256:'
_SALT = re.compile(r'[0-9a-f]{32}')
_DIGEST = re.compile(rf'{_SCHEME}[0-9a-f]{{64}}')


def new_salt() -> str:
    """A new random salt (128 bits, hex)."""
    return secrets.token_hex(16)


def valid_salt(value: object) -> str | None:
    """`value` if it is a salt as `new_salt` makes them, else None (a cassette from before digests, or edited)."""
    return value if isinstance(value, str) and _SALT.fullmatch(value) else None


def _canonical(body: bytes | str | None) -> bytes:
    # JSON as the body matcher compares it (parsed: key order and whitespace don't count), anything else as sent.
    if body is None:
        return b''
    raw = body.encode('utf-8') if isinstance(body, str) else body
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    except ValueError:  # UnicodeDecodeError included
        return raw


def body_digest(salt: str, body: bytes | str | None) -> str:
    """The digest of an unscrubbed request body under a cassette's salt: `hmac-sha256:<hex>`."""
    mac = hmac.new(bytes.fromhex(salt), _canonical(body), hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def with_digest(request: Any, digest: object) -> Any:
    """`request` (a vcrpy `Request`) carrying `digest`; a value that is not a digest leaves it without one."""
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        setattr(request, _ATTRIBUTE, digest)
    return request


def digest_of(request: Any) -> str | None:
    """The digest a vcrpy `Request` carries, if any."""
    return getattr(request, _ATTRIBUTE, None)


def unscrubbed_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the unscrubbed bodies are the same, by their digests; a recording without one is not checked."""
    d1, d2 = digest_of(r1), digest_of(r2)
    # An AssertionError is how a vcrpy matcher says why two requests differ (raised, so that `python -O` keeps it).
    if d1 is not None and d2 is not None and not hmac.compare_digest(d1, d2):
        raise AssertionError('the bodies differ where the cassette stores <scrubbed>')
