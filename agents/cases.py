"""Metadata every dataset case carries, so reports can group results by difficulty and category."""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict  # pydantic needs this TypedDict on Python < 3.12

__all__ = ('CaseMetadata',)


class CaseMetadata(TypedDict):
    """How hard a case is and which kind of request it exercises."""

    difficulty: Literal['easy', 'medium', 'hard']
    category: str
