"""Spans scrubbed before they leave the process: what an exporter sends holds no secret the local store would not.

logfire's own scrubbing (on when evaltrace configures logfire and spans are exported, see `trace.tracing`) redacts
values that mention a sensitive word; it leaves credential shapes (`sk-...`), secret environment values, values in
free text (`password=...` in an output it keeps as eval content) and the fields formatted into a message. Each
exporter evaltrace watches (`trace.telemetry.WatchedExporter`) sends copies scrubbed by `SecretScrubber` instead.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, Status

from .scrub import SecretScrubber

__all__ = ('ScrubbedSpans',)


class ScrubbedSpans:
    """Makes scrubbed copies of finished spans with one scrubber (the resource, shared by a process's spans, once)."""

    def __init__(self, scrubber: SecretScrubber) -> None:
        self.scrubber = scrubber
        self._resource: tuple[Resource, Resource] | None = None

    def copy(self, span: ReadableSpan) -> ReadableSpan:
        """`span` with its name, attributes, events, links, status and resource scrubbed."""
        scrub = self.scrubber
        status = span.status
        return ReadableSpan(
            name=scrub.scrub_text(span.name),
            context=span.context,
            parent=span.parent,
            resource=self._scrubbed_resource(span.resource),
            attributes=scrub.scrub_otel_attributes(span.attributes or {}),
            events=[
                Event(event.name, scrub.scrub_otel_attributes(event.attributes or {}), event.timestamp)
                for event in span.events
            ],
            links=[Link(link.context, scrub.scrub_otel_attributes(link.attributes or {})) for link in span.links],
            kind=span.kind,
            status=Status(status.status_code, scrub.scrub_text(status.description)) if status.description else status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _scrubbed_resource(self, resource: Resource) -> Resource:
        last = self._resource
        if last is None or last[0] is not resource:
            last = self._resource = (
                resource,
                Resource(self.scrubber.scrub_otel_attributes(resource.attributes), resource.schema_url),
            )
        return last[1]
