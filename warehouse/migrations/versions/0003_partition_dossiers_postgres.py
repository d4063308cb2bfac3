"""On PostgreSQL, core.fact_dossier becomes a table partitioned by period, so that a period's
millions of dossier rows are replaced by swapping one partition instead of rewriting them.
DuckDB keeps the plain table (its INSERT … SELECT is already bulk).

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE core.fact_dossier RENAME TO fact_dossier_unpartitioned")
    op.execute("CREATE TABLE core.fact_dossier (LIKE core.fact_dossier_unpartitioned INCLUDING ALL) "
               "PARTITION BY LIST (period_start)")
    op.execute("""
        DO $$
        DECLARE p date;
        BEGIN
            FOR p IN SELECT DISTINCT period_start FROM core.fact_dossier_unpartitioned LOOP
                EXECUTE format('CREATE TABLE core.%I PARTITION OF core.fact_dossier FOR VALUES IN (%L)',
                               'fact_dossier_p' || to_char(p, 'YYYYMMDD'), p);
            END LOOP;
        END $$
    """)
    op.execute("INSERT INTO core.fact_dossier SELECT * FROM core.fact_dossier_unpartitioned")
    op.execute("DROP TABLE core.fact_dossier_unpartitioned")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE core.fact_dossier_plain (LIKE core.fact_dossier INCLUDING ALL)")
    op.execute("INSERT INTO core.fact_dossier_plain SELECT * FROM core.fact_dossier")
    op.execute("DROP TABLE core.fact_dossier")
    op.execute("ALTER TABLE core.fact_dossier_plain RENAME TO fact_dossier")
