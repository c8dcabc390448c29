"""`evaltrace sql` and `evaltrace show`: the local trace store from the command line."""

from __future__ import annotations

from typing import Any

from .show import add_show_parser
from .sql import add_sql_parser

__all__ = ('register',)


def register(subparsers: Any) -> None:
    add_sql_parser(subparsers)
    add_show_parser(subparsers)
