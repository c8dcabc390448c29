"""vcrpy, imported on first use: importing it takes about a quarter of a second (it loads its stubs for every HTTP
library it knows), which a run that neither records nor replays model traffic need not pay.

vcrpy ships no type information; its API is used through `Any`.
"""

from __future__ import annotations

import functools
import importlib
from types import SimpleNamespace
from typing import Any

__all__ = ('vcr',)


@functools.cache
def vcr() -> Any:
    """The parts of vcrpy evaltrace uses (imported once, on the first call)."""

    def module(name: str) -> Any:
        return importlib.import_module(f'vcr.{name}')

    record_mode = module('record_mode').RecordMode
    return SimpleNamespace(
        matchers=module('matchers'),
        Cassette=module('cassette').Cassette,
        Request=module('request').Request,
        record_modes={
            'none': record_mode.NONE,
            'once': record_mode.ONCE,
            'new': record_mode.NEW_EPISODES,
            'all': record_mode.ALL,
        },
        yaml_serializer=module('serializers.yamlserializer'),
        decode_response=module('filters').decode_response,
        serialize=module('serialize').serialize,
        deserialize=module('serialize').deserialize,
        CassetteNotFoundError=module('persisters.filesystem').CassetteNotFoundError,
    )
