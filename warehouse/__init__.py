"""The warehouse: DuckDB embedded by default, PostgreSQL in production."""
