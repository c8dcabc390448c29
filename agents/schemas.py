"""The typed datasets of the project's eval suites, and `python -m agents.schemas` to regenerate their JSON schemas.

The YAML files in `datasets/` start with a `yaml-language-server: $schema=...` line pointing at the schema written
beside them, so editors complete and check cases, including the project's own evaluators.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_evals import Dataset
from pydantic_evals.evaluators import Evaluator

from agents.analyst_review import BriefRequest, ReviewedBrief
from agents.cases import CaseMetadata
from agents.evaluators import (
    AgentsRanInOrder,
    FigureEquals,
    OrderLookedUp,
    ReadOnlySql,
    ReviewOutcome,
    SameRowsAsExpected,
)
from agents.support import TicketInput, Triage
from agents.text_to_sql import SqlAnswer, SqlQuestion

__all__ = ('DATASETS', 'DATASETS_DIR', 'write_schemas')

DATASETS_DIR = Path(__file__).resolve().parent.parent / 'datasets'

TRIAGE_EVALUATORS: list[type[Evaluator[Any, Any, Any]]] = [OrderLookedUp, ReadOnlySql]
SQL_EVALUATORS: list[type[Evaluator[Any, Any, Any]]] = [SameRowsAsExpected, ReadOnlySql]
ANALYST_EVALUATORS: list[type[Evaluator[Any, Any, Any]]] = [AgentsRanInOrder, ReviewOutcome, FigureEquals, ReadOnlySql]

DATASETS: dict[str, tuple[type[Dataset[Any, Any, Any]], list[type[Evaluator[Any, Any, Any]]]]] = {
    'triage': (Dataset[TicketInput, Triage, CaseMetadata], TRIAGE_EVALUATORS),
    'text_to_sql': (Dataset[SqlQuestion, SqlAnswer, CaseMetadata], SQL_EVALUATORS),
    'analyst_review': (Dataset[BriefRequest, ReviewedBrief, CaseMetadata], ANALYST_EVALUATORS),
}
"""Dataset stem -> (typed dataset class, custom evaluator types the suite registers)."""


def write_schemas(directory: Path = DATASETS_DIR) -> list[Path]:
    """Write `<stem>_schema.json` for every dataset, as `Dataset.to_file` does."""
    import json

    written: list[Path] = []
    for stem, (dataset_type, evaluator_types) in DATASETS.items():
        schema = dataset_type.model_json_schema_with_evaluators(evaluator_types)
        path = directory / f'{stem}_schema.json'
        path.write_text(json.dumps(schema, indent=2) + '\n')
        written.append(path)
    return written


if __name__ == '__main__':
    write_schemas()
