from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from logfire.testing import CaptureLogfire

from agents.db import DATA_DIR, execute_readonly, schema_sql, shop_db


def test_build_is_deterministic_and_keyed_by_the_seed(tmp_path: Path) -> None:
    seed = tmp_path / 'tiny.sql'
    seed.write_text('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);')
    first = shop_db(seed, tmp_path / 'build')
    assert shop_db(seed, tmp_path / 'build') == first
    assert execute_readonly(first, 'SELECT SUM(x) FROM t').rows == [(3,)]
    seed.write_text('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (5);')
    second = shop_db(seed, tmp_path / 'build')
    assert second != first
    assert execute_readonly(second, 'SELECT SUM(x) FROM t').rows == [(5,)]


def test_shop_database_content() -> None:
    path = shop_db(DATA_DIR / 'shop.sql')
    result = execute_readonly(path, 'SELECT COUNT(*), ROUND(SUM(total), 2) FROM orders')
    assert result.columns == ['COUNT(*)', 'ROUND(SUM(total), 2)']
    assert result.rows == [(30, 10011.5)]
    assert 'CREATE TABLE orders' in schema_sql(path)


@pytest.mark.parametrize(
    'statement',
    [
        "DELETE FROM orders WHERE status = 'cancelled'",
        "UPDATE products SET price = 1 WHERE sku = 'CB-001'",
        "INSERT INTO customers VALUES (99, 'x', 'x@example.com', 'UK', '2024-01-01', 'plus')",
        'DROP TABLE orders',
    ],
)
def test_writes_are_rejected(statement: str) -> None:
    path = shop_db()
    with pytest.raises(sqlite3.OperationalError, match=r'readonly|read-only'):
        execute_readonly(path, statement)
    assert execute_readonly(path, 'SELECT COUNT(*) FROM orders').rows == [(30,)]


def test_one_statement_at_a_time() -> None:
    with pytest.raises(sqlite3.ProgrammingError):
        execute_readonly(shop_db(), 'SELECT 1; DELETE FROM orders')


def test_each_query_is_a_span(capfire: CaptureLogfire) -> None:
    execute_readonly(shop_db(), 'SELECT name FROM products LIMIT 2')
    spans = [s for s in capfire.exporter.exported_spans_as_dict() if s['attributes'].get('db.system') == 'sqlite']
    assert [s['attributes']['db.statement'] for s in spans] == ['SELECT name FROM products LIMIT 2']
