"""When a dossier record was entered in its software: a dossier received before the reform of the
units and entered after it was handed over to its unit then (docs/reconciliation.md, "Across the reform").

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in ("core", "staging"):
        op.add_column("fact_dossier", sa.Column("entered_at", sa.DateTime), schema=schema)


def downgrade() -> None:
    for schema in ("core", "staging"):
        op.drop_column("fact_dossier", "entered_at", schema=schema)
