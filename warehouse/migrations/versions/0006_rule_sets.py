"""Biểu 06 rule sets: the pause date of a dossier, and the explanation of a vendor's figures
against the province's (docs/canonical-model.md, "Rule sets").

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in ("core", "staging"):
        op.add_column("fact_dossier", sa.Column("paused_at", sa.DateTime), schema=schema)
    for schema in ("quality", "staging"):
        op.create_table(
            "definition_moves",
            sa.Column("period_start", sa.Date, nullable=False),
            sa.Column("period_end", sa.Date, nullable=False),
            sa.Column("rule_set", sa.String, nullable=False),
            sa.Column("against", sa.String, nullable=False),
            sa.Column("unit_code", sa.String, nullable=False),
            sa.Column("figure", sa.String, nullable=False),
            sa.Column("province_value", sa.BigInteger, nullable=False),
            sa.Column("against_value", sa.BigInteger, nullable=False),
            # the rule that moves the dossiers, '' for the row of totals
            sa.Column("rule", sa.String, nullable=False),
            sa.Column("rule_label", sa.String, nullable=False),
            sa.Column("dossiers_in", sa.BigInteger, nullable=False),
            sa.Column("dossiers_out", sa.BigInteger, nullable=False),
            sa.Column("example_dossiers", sa.String, nullable=False),
            sa.Column("run_id", sa.String, nullable=False),
            schema=schema,
        )


def downgrade() -> None:
    for schema in ("quality", "staging"):
        op.drop_table("definition_moves", schema=schema)
    for schema in ("core", "staging"):
        op.drop_column("fact_dossier", "paused_at", schema=schema)
