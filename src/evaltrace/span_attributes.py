"""A span's attributes, read as the plain dict the OpenTelemetry SDK keeps them in.

`span.attributes` is a read-only view over the SDK's `BoundedAttributes`, whose items are read one by one in Python
(and its iteration takes a lock): several times slower than a dict, and every span is read by several processors.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ('attributes_of',)


def attributes_of(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes as a dict, to read only: the SDK's own when it has the shape this was written for, else
    a copy.

    logfire hands span processors spans whose attributes are a read-only view (`MappingProxyType`) over the SDK's
    `BoundedAttributes`; copying it reads each item in Python (15 us for a case span's 40 attributes, on each of the
    span's readers). The view's one referent is the mapping it shows, which is only ever read here.
    """
    attributes: Any = getattr(span, '_attributes', None)
    if type(attributes) is MappingProxyType:
        referents = gc.get_referents(attributes)
        attributes = referents[0] if len(referents) == 1 else None
    inner = getattr(attributes, '_dict', attributes)
    if type(inner) is dict:
        return inner  # pyright: ignore[reportUnknownVariableType]
    return dict(span.attributes or {})
