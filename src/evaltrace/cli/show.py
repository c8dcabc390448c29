"""`evaltrace show`: a case's trace from the local store, printed as a tree (see `views.show_tree`).

The target is a case of the JSON report (its node id or case name), a trace id, or every failed case of the last
run; its spans are read from the store (see `store.records`) and printed with the case's evaluator results.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TextIO, cast

import duckdb

from ..report.final import read_report
from ..results.case import CaseResult
from ..store.duckdb import StoreError, open_store
from ..store.records import spans_of_traces, trace_ids_starting_with
from ..views.show_tree import EVALUATION_KINDS, SpanNode, evaluation_lines, render_trace, short, span_tree
from .paths import SettingOffError
from .paths import report_path as cli_report_path
from .paths import store_path as cli_store_path

__all__ = (
    'ShowError',
    'add_show_parser',
    'find_cases',
    'load_trace',
    'run_show',
    'show_command',
)

_FAILED = ('failed', 'error')
_TRACE_ID = re.compile(r'[0-9a-f]{8,32}')


class ShowError(Exception):
    """The target could not be resolved or shown; the message is one line for the user."""


# --- reading -----------------------------------------------------------------------------------------------------


def resolve_trace_id(con: duckdb.DuckDBPyConnection, trace_id: str) -> str | None:
    """The full trace id for a full id or a unique prefix (8+ hex chars); None when no trace matches."""
    matches = trace_ids_starting_with(con, trace_id)
    if len(matches) > 1:
        raise ShowError(f'trace id prefix {trace_id!r} matches several traces; give more characters')
    return matches[0] if matches else None


def load_trace(con: duckdb.DuckDBPyConnection, trace_id: str) -> list[SpanNode]:
    """The root spans of a trace (usually one), each with its subtree; [] when the store has no such trace."""
    return span_tree(spans_of_traces(con, [trace_id]).get(trace_id, []))


# --- resolving the target ----------------------------------------------------------------------------------------


def _read_report(report_path: Path) -> list[CaseResult]:
    if not report_path.is_file():
        raise ShowError(f'no report at {report_path}; run your evals with pytest first, or pass a trace id')
    try:
        return list(read_report(report_path).cases)
    except ValueError as e:  # the one reader's one-line error names the file and what is wrong
        raise ShowError(str(e)) from None


def _pytest_escaped(text: str) -> str:
    # What pytest does to a parametrize id (`_pytest.compat.ascii_escaped`): `café` becomes `caf\xe9` in node ids.
    escaped = text.encode('unicode_escape').decode('ascii')
    return escaped.translate({i: f'\\x{i:02x}' for i in (*range(32), 127)})


def _nodeid_forms(target: str) -> tuple[str, ...]:
    """A node id as typed, and as pytest spells it (non-ASCII characters of the parameter id escaped)."""
    forms = [target]
    head, bracket, params = target.partition('[')
    if bracket and not params.isascii():
        forms.append(head + bracket + _pytest_escaped(params))
    return tuple(forms)


def find_cases(report_path: Path, target: str | None) -> list[CaseResult]:
    """Cases of the report: the failed/errored ones (target None), else the one matching a node id or case name.

    A target matches a case whose node id equals it, else ends with it (e.g. `test_fn[case]`), else whose case name
    equals it, else whose node id contains it.

    Raises:
        ShowError: No report, no match, or several matches.
    """
    cases = _read_report(report_path)
    if target is None:
        return [c for c in cases if c.status in _FAILED]
    forms = _nodeid_forms(target)
    for matches in (
        [c for c in cases if c.nodeid in forms],
        [c for c in cases if c.nodeid.endswith(forms)],
        [c for c in cases if c.case == target],
        [c for c in cases if any(form in c.nodeid for form in forms)],
    ):
        if len(matches) == 1:
            return matches
        if matches:
            listed = ', '.join(c.nodeid for c in matches[:3])
            raise ShowError(
                f'{target!r} matches {len(matches)} cases in {report_path} ({listed}, ...); be more precise'
            )
    raise ShowError(f'no case {target!r} in {report_path}')


def _header(case: CaseResult | None, trace_id: str) -> str:
    if case is None:
        return f'trace {trace_id}'
    return f'{case.nodeid}  {case.status.upper()}  trace {trace_id}'


def _show_one(
    con: duckdb.DuckDBPyConnection, trace_id: str, case: CaseResult | None, out: TextIO, max_chars: int
) -> None:
    roots = load_trace(con, trace_id)
    if not roots:
        what = f' (case {case.nodeid})' if case is not None else ''
        raise ShowError(f'trace {trace_id}{what} is not in the store; it may be older than the runs kept')
    out.write(_header(case, trace_id) + '\n')
    render_trace(roots, out, max_chars=max_chars)
    # The report's evaluator results, unless the spans already showed them.
    has_span_results = any(k in n.span.attributes for r in roots for n in r.walk() for k in EVALUATION_KINDS)
    if case is not None and not has_span_results:
        lines = evaluation_lines(case.to_dict(), max_chars)
        for failure in case.evaluator_failures:
            lines.append(f'✗ {failure.get("name")} raised: {short(failure.get("error_message", ""), max_chars)}')
        if lines:
            out.write('evaluators\n')
            out.writelines(f'   {line}\n' for line in lines)


def run_show(
    target: str | None,
    *,
    last_failed: bool = False,
    store_path: Path | str | None = None,
    report_path: Path | str | None = None,
    keep_runs: int | None = None,
    max_chars: int = 160,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the trace of a case (node id or case name, looked up in the JSON report), of a trace id, or of every
    failed case of the last run; returns the exit status (errors are one line on `err`, status 1).
    """
    out = cast('TextIO', sys.stdout) if out is None else out
    err = cast('TextIO', sys.stderr) if err is None else err
    try:
        store_path = cli_store_path(None if store_path is None else Path(store_path))
        report_path = cli_report_path(None if report_path is None else Path(report_path))
        if last_failed == (target is not None):
            raise ShowError('give either a case node id / trace id, or --last-failed')
        targets: list[tuple[str | None, CaseResult | None]]
        if last_failed:
            failed = find_cases(report_path, None)
            if not failed:
                out.write(f'no failed case in {report_path}\n')
                return 0
            targets = [(c.trace_id, c) for c in failed]
        else:
            assert target is not None
            is_trace_id = _TRACE_ID.fullmatch(target.lower()) is not None
            try:
                case = find_cases(report_path, target)[0]
            except ShowError:
                if not is_trace_id:
                    raise
                targets = [(target, None)]
            else:
                targets = [(case.trace_id, case)]
        con = open_store(store_path, keep_runs=keep_runs, on_notice=lambda line: err.write(line + '\n'))
        try:
            status = 0
            for i, (trace_id, case) in enumerate(targets):
                if i:
                    out.write('\n')
                try:
                    _show_target(con, trace_id, case, store_path, out, max_chars)
                except ShowError as e:
                    if not last_failed:
                        raise
                    # One failed case without a stored trace must not hide the others.
                    err.write(f'evaltrace show: {e}\n')
                    status = 1
        finally:
            con.close()
    except (ShowError, StoreError, SettingOffError) as e:
        err.write(f'evaltrace show: {e}\n')
        return 1
    return status


def _show_target(
    con: duckdb.DuckDBPyConnection,
    trace_id: str | None,
    case: CaseResult | None,
    store_path: Path | str,
    out: TextIO,
    max_chars: int,
) -> None:
    if not trace_id:
        assert case is not None
        raise ShowError(f'case {case.nodeid} has no trace (status {case.status})')
    full_id = resolve_trace_id(con, trace_id) if case is None else trace_id
    if full_id is None:
        raise ShowError(f'no trace {trace_id!r} in {store_path}')
    _show_one(con, full_id, case, out, max_chars)


def show_command(args: argparse.Namespace) -> int:
    """The handler `add_show_parser` registers: reads the parsed options and calls `run_show`."""
    return run_show(
        cast('str | None', args.target),
        last_failed=cast('bool', args.last_failed),
        store_path=cast('Path | None', args.store),
        report_path=cast('Path | None', args.report),
        max_chars=cast('int', args.max_chars),
    )


def add_show_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:  # pyright: ignore[reportPrivateUsage]
    """Register `evaltrace show`; the parser's `handler` default is `show_command(args) -> int`."""
    parser = subparsers.add_parser(
        'show',
        help="print a case's trace as a tree (spans, durations, tokens, cost, tools, messages, exceptions, evaluators)",
        description=(
            "Print a case's trace from the local trace store as a tree. The target is a case's node id (or its "
            'ending, e.g. "test_fn[case]", or the case name), looked up in the JSON report, or a trace id (or a '
            'unique prefix of 8+ characters); --last-failed shows every failed case of the last run.'
        ),
    )
    parser.add_argument('target', nargs='?', help='case node id, case name or trace id')
    parser.add_argument('--last-failed', action='store_true', help='show the failed cases of the last run')
    parser.add_argument(
        '--store',
        type=Path,
        help='trace store (default: the store setting, as pytest resolves it: .evaltrace/traces.duckdb)',
    )
    parser.add_argument(
        '--report',
        type=Path,
        help='JSON report (default: the report setting, as pytest resolves it: .evaltrace/report.json)',
    )
    parser.add_argument(
        '--max-chars', type=int, default=160, help='longest message, argument or result shown (default: %(default)s)'
    )
    parser.set_defaults(handler=show_command)
    return parser
