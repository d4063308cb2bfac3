from alembic import context

import warehouse.db  # noqa: F401 - registers the DuckDB implementation

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
