"""The local trace store: the spool every process appends to, the DuckDB file, and the one reader of its records."""
