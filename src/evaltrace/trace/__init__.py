"""Tracing: Logfire set-up, one trace per case with its usage summed, a dead backend kept harmless, links to traces."""
