"""On PostgreSQL, one row per period in core.period_locks: loads and publications of a period
lock its row FOR UPDATE (warehouse/db.py `warehouse_lock`). A row lock needs UPDATE on the
table, which only the loader has; an advisory lock, used before, can be taken by any role,
an analyst's included, and so could make loads wait for ever. DuckDB locks a file instead.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table("period_locks", sa.Column("period_label", sa.String, primary_key=True), schema="core")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("period_locks", schema="core")
