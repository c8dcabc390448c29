"""evaltrace's own inner runs are sealed from the outer environment: settings exported there do not reach them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTER = {
    'EVALTRACE_SKIP': '1',
    'EVALTRACE_RECORD': 'all',
    'EVALTRACE_GATE': 'min_pass_rate=1.0',
    'GITHUB_ACTIONS': 'true',
    'LOGFIRE_TOKEN': 'pylf_v1_us_notarealtokennotarealtoken',
    'OTEL_SERVICE_NAME': 'outer',
    'PYTEST_ADDOPTS': '--evaltrace-skip',
}


def test_settings_exported_outside_do_not_reach_inner_runs() -> None:
    """Tests that run inner pytest sessions pass with evaltrace settings and CI variables exported around them."""
    env = {**os.environ, **OUTER}
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', 'tests/core/test_collect_and_verdict.py', '-q', '-p', 'no:cacheprovider',
         '-p', 'no:randomly', '-k', 'stable_node_id or under_a_passing_gate or report_path_setting'],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert '3 passed' in proc.stdout
