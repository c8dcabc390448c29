"""Names that other tools and processes read, each defined once: span attributes, JUnit properties, xdist channel
keys and default paths. Two copies of a name drift; a reader (Logfire's SQL, a JUnit consumer, an xdist worker of the
same run) finds nothing when they do.

Imports nothing, so that any module may use it, the plugin included.
"""

from __future__ import annotations

from pathlib import Path

__all__ = (
    'CASE_TRACE_ATTRIBUTE',
    'DEFAULT_HTML_PATH',
    'DEFAULT_REPORT_PATH',
    'DEFAULT_STORE_PATH',
    'DIST_KEY',
    'EXPECTED_KEY',
    'INPUTS_DIGEST_ATTRIBUTE',
    'OPERATION_ATTRIBUTE',
    'OUTCOME_PROPERTY',
    'OUTPUT_TYPE_ATTRIBUTE',
    'REPLAYED_ATTRIBUTE',
    'ROOT_ATTRIBUTE',
    'RUN_ID_KEY',
    'SESSION_GATE_NODE',
    'SHARD_ATTRIBUTE',
    'SHARD_PLAN_KEY',
    'STATUS_ATTRIBUTE',
)

# Span attributes (and JUnit properties of the same meaning).
ROOT_ATTRIBUTE = 'evaltrace.case'
"""On the root span of a case's own trace: true."""
STATUS_ATTRIBUTE = 'evaltrace.status'
"""On a case's root span and in its JUnit properties: the case's status (passed, failed, error or skipped)."""
REPLAYED_ATTRIBUTE = 'evaltrace.replayed'
"""On a model-request span answered from a cassette (its usage was not spent by this run), and on the case's root."""
CASE_TRACE_ATTRIBUTE = 'evaltrace.case_trace_id'
"""On each case span of a suite run's experiment: the trace id of the case's own trace."""
INPUTS_DIGEST_ATTRIBUTE = 'evaltrace.inputs_digest'
"""On a case's root span: a digest of its inputs, by which re-scoring refuses an output stored for other inputs."""
OUTPUT_TYPE_ATTRIBUTE = 'evaltrace.output_type'
"""On a case's root span when JSON does not keep its output's type (a model, a tuple, a date...): that type."""
SHARD_ATTRIBUTE = 'evaltrace.shard'
"""On a case's root span when its run was one shard of several: `i/n`, by which re-scoring leaves out the others'."""
OPERATION_ATTRIBUTE = 'gen_ai.operation.name'
"""OpenTelemetry's GenAI operation of a span: `experiment` on a suite run's, `invoke_agent`, `execute_tool`, ..."""
OUTCOME_PROPERTY = 'evaltrace.outcome'
"""A JUnit property: why a failure did not fail the run (gated), or that a gate failed."""

SESSION_GATE_NODE = 'evaltrace'
"""The pytest node id under which a failed session gate is reported (a suite's gate is under its suite)."""

# Keys of pytest-xdist's channels between the controller and its workers.
RUN_ID_KEY = 'evaltrace_run_id'
"""workerinput: the run id every process of the run shares."""
DIST_KEY = 'evaltrace_dist'
"""workerinput: the controller's `--dist` mode (xdist sets every worker's own to `no`)."""
EXPECTED_KEY = 'evaltrace_expected'
"""workeroutput: the node ids of the eval cases a worker was given."""
SHARD_PLAN_KEY = 'evaltrace_shard_plan'
"""workeroutput: a worker's shard plan."""

# Default paths, relative to the rootdir.
DEFAULT_REPORT_PATH = Path('.evaltrace/report.json')
DEFAULT_STORE_PATH = Path('.evaltrace/traces.duckdb')
DEFAULT_HTML_PATH = Path('.evaltrace/report.html')
