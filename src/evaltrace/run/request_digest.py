"""The digest of a request's unscrubbed body, stored beside each recorded request whose body was scrubbed, so that a
replay tells apart two requests that scrub to the same text.

A cassette stores requests scrubbed, and matching compares scrubbed forms; but the scrubber also takes words that
are not secrets (the word after `cookie:` or `session:` in a prompt, a value under a JSON key named `auth_mode`), so
two prompts that differ only there would match the same recording and replay a stale answer. Each recorded request
whose body scrubbing changed therefore carries `request_digest`, a digest of its unscrubbed body, and a request
matches a recording only when their digests agree too. A body scrubbing left alone is stored as it was sent: the
scrubbed match is exact, and it needs no digest.

The digest is keyed by a random salt per cassette, stored in the cassette (`request_digest_salt`), and kept when the
cassette is recorded again (so an unchanged exchange keeps its digest and gives an empty diff). The salt is not a
secret, and can't be: replay runs on every machine that has the cassettes (CI, each contributor) with nothing else,
so anything needed to check a digest must travel with them. It keeps digests from being compared across cassettes or
looked up in precomputed tables; it can't stop someone holding the cassette from putting a guess where `<scrubbed>`
stands and digesting the result. So the digest is memory-hard, scrypt (N=2^14, r=8: about 50 ms and 16 MiB a guess)
rather than one HMAC (millions of guesses a second): a long random credential is out of reach either way, and a weak
password typed into a prompt costs hours of guessing a short dictionary instead of a blink. Only requests whose body
was scrubbed pay for it, once when recorded and once when replayed. Only the body is digested: the URL's secret
query parameters and the secret headers are credentials that differ from one machine to the next, and take no part
in matching.

A recording with no digest is matched on its scrubbed form alone (a cassette of an evaltrace from before digests, as
it was then); one with the HMAC-SHA256 digest an earlier evaltrace wrote is still checked under it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = (
    'DIGEST_KEY',
    'SALT_KEY',
    'body_digest',
    'digest_to_store',
    'digests_agree',
    'new_salt',
    'unscrubbed_body',
    'valid_salt',
    'with_body',
    'with_digest',
)

SALT_KEY = 'request_digest_salt'
"""The cassette's top-level key holding its salt (hex)."""
DIGEST_KEY = 'request_digest'
"""The key beside an interaction's `request` and `response` holding its request's digest; vcrpy ignores it."""
_ATTRIBUTE = 'evaltrace_request_digest'
"""Where a digest, or what makes it, rides on a vcrpy `Request` (copies made by vcrpy and the scrubber keep it)."""
_SCRYPT = 'scrypt-n16384-r8-p1'
_HMAC = 'hmac-sha256'  # written by evaltrace before digests were memory-hard; still checked
_SALT = re.compile(r'[0-9a-f]{32}')
_DIGEST = re.compile(rf'(?:{_SCRYPT}|{_HMAC}):[0-9a-f]{{64}}')


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


def body_digest(salt: str, body: bytes | str | None, scheme: str = _SCRYPT) -> str:
    """The digest of an unscrubbed request body under a cassette's salt: `<scheme>:<hex>`."""
    key, canonical = bytes.fromhex(salt), _canonical(body)
    if scheme == _HMAC:
        return f'{_HMAC}:{hmac.new(key, canonical, hashlib.sha256).hexdigest()}'
    return f'{_SCRYPT}:{hashlib.scrypt(canonical, salt=key, n=2**14, r=8, p=1, maxmem=64 * 2**20, dklen=32).hex()}'


@dataclass
class _Pending:
    """What makes the digest of a request sent in this run, made only when a match or a save needs it."""

    salt: str
    body: bytes | str | None
    made: dict[str, str] = field(default_factory=dict[str, str])

    def digest(self, scheme: str = _SCRYPT) -> str:
        if scheme not in self.made:
            self.made[scheme] = body_digest(self.salt, self.body, scheme)
        return self.made[scheme]


def with_digest(request: Any, digest: object) -> Any:
    """`request` (a vcrpy `Request` read from a cassette) carrying `digest`; a value that is not a digest leaves it
    without one."""
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        setattr(request, _ATTRIBUTE, digest)
    return request


def with_body(request: Any, salt: str, body: bytes | str | None) -> Any:
    """`request` (a vcrpy `Request` about to be sent) able to make the digest of its unscrubbed `body` on demand."""
    setattr(request, _ATTRIBUTE, _Pending(salt, body))
    return request


def digest_to_store(request: Any, scrubbed_body: bytes | str | None) -> str | None:
    """The digest to store beside a request: the one it was read with; for a request sent in this run, made from its
    body if scrubbing changed it (`scrubbed_body` is what the cassette stores), else none."""
    digest = getattr(request, _ATTRIBUTE, None)
    if isinstance(digest, _Pending):
        return digest.digest() if _canonical(digest.body) != _canonical(scrubbed_body) else None
    return digest


def digests_agree(r1: Any, r2: Any) -> bool:
    """Whether two requests' unscrubbed bodies are the same, as far as their digests tell (pure but for the cache).

    A recording without a digest is not checked. A recording's stored digest is compared with the other request's
    made under the same scheme; two requests of this run compare their bodies.
    """
    d1, d2 = getattr(r1, _ATTRIBUTE, None), getattr(r2, _ATTRIBUTE, None)
    if d1 is None or d2 is None:
        return True
    if isinstance(d1, _Pending) and isinstance(d2, _Pending):
        return d1.salt == d2.salt and _canonical(d1.body) == _canonical(d2.body)
    if isinstance(d1, _Pending):
        d1, d2 = d2, d1
    assert isinstance(d1, str)
    mine = d2.digest(d1.partition(':')[0]) if isinstance(d2, _Pending) else d2
    return hmac.compare_digest(d1, mine)


def unscrubbed_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the unscrubbed bodies are the same, by their digests (see `digests_agree`)."""
    # An AssertionError is how a vcrpy matcher says why two requests differ (raised, so that `python -O` keeps it).
    if not digests_agree(r1, r2):
        raise AssertionError('the bodies differ where the cassette stores <scrubbed>')
