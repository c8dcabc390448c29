"""A span's attributes, read as the plain dict the OpenTelemetry SDK keeps them in.

`span.attributes` is a read-only view over the SDK's `BoundedAttributes`, whose items are read one by one in Python
(and its iteration takes a lock): several times slower than a dict, and every span is read by several processors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ('attributes_of',)


def attributes_of(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes as a dict, to read only: the SDK's own when it has the shape this was written for, else
    a copy (logfire hands span processors spans whose attributes are a view over the SDK's)."""
    inner = getattr(getattr(span, '_attributes', None), '_dict', None)
    if type(inner) is dict:
        return inner  # pyright: ignore[reportUnknownVariableType]
    return dict(span.attributes or {})
