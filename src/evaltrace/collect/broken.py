"""Items that stand for what cannot be collected: a suite with unusable settings, an eval module that fails to import.

Each errors at setup with a one-line reason, as a bad dataset's `[dataset-error]` item does, instead of a collection
error: pytest stops the whole session at a collection error, so one broken suite would keep every other from running.
Light on purpose (pytest and the standard library only): `EvalModule` is made for every module that names evaltrace.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .suite import SuiteSpec

__all__ = ('BrokenItem', 'EvalModule', 'broken_suite', 'import_failure_message', 'mentions_evaltrace')


class BrokenItem(pytest.Item):
    """An item that errors at setup with its message (and is skipped with the evals under `--evaltrace-skip`)."""

    def __init__(self, *, message: str, lineno: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # pyright: ignore[reportUnknownMemberType]  (pytest leaves **kw untyped)
        self.message = message
        self.lineno = lineno  # 0-based, as pytest has it; a skip's report needs one

    def setup(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def runtest(self) -> None:  # never reached: setup fails
        pass

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.lineno, self.name


def broken_suite(
    collector: pytest.Module | pytest.Class, name: str, fn: Any, spec: SuiteSpec, skip: str | None
) -> BrokenItem | None:
    """The error item of a suite whose decorator settings or signature cannot work, or None for a usable suite."""
    from .suite import suite_problem  # pydantic-evals: only once a suite is seen

    problem = suite_problem(fn, spec)
    if problem is None:
        return None
    message = f'evaltrace: bad suite: {problem}'
    code: Any = getattr(fn, '__code__', None)
    lineno = code.co_firstlineno - 1 if code is not None else 0
    item = BrokenItem.from_parent(collector, name=name, message=message, lineno=lineno)  # pyright: ignore[reportUnknownMemberType]
    item.add_marker('evaltrace')  # `-m "not evaltrace"` deselects it with the suites that work
    if skip is not None:
        item.add_marker(pytest.mark.skip(reason=skip))
    return item


def mentions_evaltrace(path: Path) -> bool:
    """Whether a test module names evaltrace: only such modules turn an import failure into an error item."""
    try:
        return b'evaltrace' in path.read_bytes()
    except OSError:
        return False


def _shown(path: str | Path, rootdir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(rootdir))
    except ValueError:
        return str(path)


def _where(error: BaseException, rootdir: Path) -> str:
    """`file:line` of what raised: the line of a syntax error, else the deepest frame in a real file."""
    if isinstance(error, SyntaxError) and error.filename:
        return f'{_shown(error.filename, rootdir)}:{error.lineno}'
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith('<')]
    return f'{_shown(frames[-1].filename, rootdir)}:{frames[-1].lineno}' if frames else ''


def import_failure_message(module: str, error: BaseException, rootdir: Path) -> str:
    """One line: the module that cannot be imported, the exception, and where it was raised."""
    what = error.msg if isinstance(error, SyntaxError) else str(error)
    where = _where(error, rootdir)
    return f'evaltrace: cannot import {module}: {type(error).__name__}: {what}' + (f' ({where})' if where else '')


class EvalModule(pytest.Module):
    """A test module that names evaltrace: if its import fails, it holds one error item instead of failing to collect.

    A module that imports an evaluator module which raises (a missing key, a missing dependency, a syntax error) is
    then one `…::import-error` item; the suites of other modules still run.
    """

    def collect(self) -> Any:
        try:
            self.obj  # noqa: B018  (imports the module, once: pytest keeps it for the collection below)
        except pytest.Collector.CollectError as e:
            # pytest's own wrapping of an import or syntax error; anything else it reports is left to it.
            if not isinstance(e.__cause__, ImportError | SyntaxError):
                raise
            return [self._broken(e.__cause__)]
        except Exception as e:
            unittest: Any = sys.modules.get('unittest')  # a module-level unittest.SkipTest skips, as pytest has it
            if unittest is not None and isinstance(e, unittest.SkipTest):
                raise
            return [self._broken(e)]
        return super().collect()

    def _broken(self, error: BaseException) -> BrokenItem:
        rootdir = self.config.rootpath
        message = import_failure_message(_shown(self.path, rootdir), error, rootdir)
        return BrokenItem.from_parent(self, name='import-error', message=message)  # pyright: ignore[reportUnknownMemberType]
