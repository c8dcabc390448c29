"""How the tests and benchmarks start Debian's Chromium: headless, and quiet on a machine with no network."""

from __future__ import annotations

CHROMIUM_PATH = '/usr/bin/chromium'
# Without the background-networking flags Chromium tries to reach Google's hosts at start, which this machine refuses.
CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]
