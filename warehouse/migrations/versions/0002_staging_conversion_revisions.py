"""Per-run staging tables, the official unit conversion, vintage reasons, revisions and the
view of old units' figures on the new units.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FIGURES = [
    "received_total", "received_online", "received_direct_postal", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "pending_total", "pending_within_due", "pending_overdue", "returned_withdrawn",
]
# period facts are written to staging first, then swapped into core in one transaction
STAGED = ("fact_dossier", "fact_bieu06", "unit_period_status", "bieu06_reconciled")


def upgrade() -> None:
    for table in STAGED:
        op.execute(f"CREATE TABLE staging.{table} AS SELECT * FROM core.{table} WHERE false")
    op.execute("CREATE TABLE staging.findings AS SELECT * FROM quality.findings WHERE false")
    op.execute("CREATE TABLE staging.quarantine AS SELECT * FROM quality.quarantine WHERE false")

    op.create_table(
        "unit_conversion",
        sa.Column("new_code", sa.String, nullable=False),
        sa.Column("new_name", sa.String),
        sa.Column("new_province_code", sa.String),
        sa.Column("old_code", sa.String, nullable=False),
        sa.Column("old_name", sa.String),
        sa.Column("old_district_code", sa.String),
        sa.Column("old_province_code", sa.String),
        sa.Column("merge_type", sa.String, nullable=False),
        sa.Column("merge_note", sa.String),
        sa.Column("source_row", sa.Integer),
        sa.Column("effective_from", sa.Date, nullable=False),
        schema="core",
    )
    op.execute("""
        CREATE VIEW core.unit_conversion_splits AS
        SELECT old_code, old_name, count(*) AS new_units, string_agg(new_code, ',' ORDER BY new_code) AS new_codes,
               string_agg(merge_type, ',' ORDER BY new_code) AS merge_types
        FROM core.unit_conversion GROUP BY old_code, old_name HAVING count(*) > 1
    """)

    op.create_table(
        "bieu06_rollup",
        sa.Column("parent_code", sa.String, nullable=False),
        sa.Column("parent_level", sa.String, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("field_code", sa.String, nullable=False),
        *[sa.Column(f, sa.BigInteger) for f in FIGURES],
        sa.Column("units_included", sa.Integer, nullable=False),
        sa.Column("units_not_published", sa.Integer, nullable=False),
        sa.Column("duplicates_removed", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String, nullable=False),
        schema="core",
    )
    op.execute("CREATE TABLE staging.bieu06_rollup AS SELECT * FROM core.bieu06_rollup WHERE false")

    op.add_column("vintages", sa.Column("reason", sa.Text), schema="publish")
    op.add_column("vintages", sa.Column("sources", sa.Text), schema="publish")

    union = " UNION ALL ".join(
        f"SELECT unit_code, period_start, period_end, vintage, '{f}' AS figure, {f} AS value "
        f"FROM core.published_bieu06_by_unit" for f in FIGURES)
    op.execute(f"""
        CREATE VIEW publish.bieu06_revisions_v1 AS
        WITH figures AS ({union}),
        pairs AS (
            SELECT v.period_start, v.period_end, p.vintage AS from_vintage, v.vintage AS to_vintage, v.reason
            FROM publish.vintages v
            JOIN publish.vintages p ON p.period_start = v.period_start AND p.period_end = v.period_end
                                   AND p.vintage = v.vintage - 1
        ),
        keys AS (
            SELECT DISTINCT pr.period_start, pr.period_end, pr.from_vintage, pr.to_vintage, pr.reason, f.unit_code, f.figure
            FROM pairs pr JOIN figures f ON f.period_start = pr.period_start AND f.period_end = pr.period_end
                                        AND f.vintage IN (pr.from_vintage, pr.to_vintage)
        )
        SELECT k.unit_code, k.period_start, k.period_end, k.figure, k.from_vintage, k.to_vintage,
               o.value AS old_value, n.value AS new_value,
               CASE WHEN o.unit_code IS NULL THEN 'published' WHEN n.unit_code IS NULL THEN 'withdrawn'
                    ELSE 'revised' END AS change, k.reason
        FROM keys k
        LEFT JOIN figures o ON o.unit_code = k.unit_code AND o.period_start = k.period_start
             AND o.period_end = k.period_end AND o.figure = k.figure AND o.vintage = k.from_vintage
        LEFT JOIN figures n ON n.unit_code = k.unit_code AND n.period_start = k.period_start
             AND n.period_end = k.period_end AND n.figure = k.figure AND n.vintage = k.to_vintage
        WHERE o.unit_code IS NULL OR n.unit_code IS NULL OR o.value IS DISTINCT FROM n.value
    """)

    sums = ", ".join(
        f"CASE WHEN n.comparable AND count(p.unit_code) = n.old_units THEN sum(p.{f}) END AS {f}" for f in FIGURES)
    op.execute(f"""
        CREATE VIEW publish.bieu06_old_units_on_new_v1 AS
        WITH conv AS (
            SELECT c.*, count(*) OVER (PARTITION BY c.old_code) AS targets FROM core.unit_conversion c
        ),
        new_units AS (
            SELECT new_code, bool_and(merge_type = 'whole' AND targets = 1) AS comparable, count(*) AS old_units
            FROM conv GROUP BY new_code
        )
        SELECT c.new_code AS unit_code, p.period_start, p.period_end, n.comparable,
               n.old_units, count(p.unit_code) AS old_units_published,
               CASE WHEN NOT n.comparable THEN 'split_or_partial_merge'
                    WHEN count(p.unit_code) < n.old_units THEN 'old_unit_not_published'
                    ELSE 'whole' END AS conversion_status,
               {sums}
        FROM conv c
        JOIN new_units n ON n.new_code = c.new_code
        JOIN publish.bieu06_by_unit p ON p.unit_code = c.old_code AND p.period_end < c.effective_from
        GROUP BY c.new_code, p.period_start, p.period_end, n.comparable, n.old_units
    """)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.bieu06_old_units_on_new_v1")
    op.execute("DROP VIEW IF EXISTS publish.bieu06_revisions_v1")
    op.drop_column("vintages", "sources", schema="publish")
    op.drop_column("vintages", "reason", schema="publish")
    op.execute("DROP TABLE IF EXISTS staging.bieu06_rollup")
    op.drop_table("bieu06_rollup", schema="core")
    op.execute("DROP VIEW IF EXISTS core.unit_conversion_splits")
    op.drop_table("unit_conversion", schema="core")
    for table in (*STAGED, "findings", "quarantine"):
        op.execute(f"DROP TABLE IF EXISTS staging.{table}")
