"""Published views for consumers: by province, by field, the Decision 766 indicators; the
tables that freeze them per vintage; the fields dimension.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FIGURES = [
    "received_total", "received_online", "received_direct_postal", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "pending_total", "pending_within_due", "pending_overdue", "returned_withdrawn",
]
LATEST = """vintage = (SELECT max(v.vintage) FROM publish.vintages v
                       WHERE v.period_start = {t}.period_start AND v.period_end = {t}.period_end)"""


def upgrade() -> None:
    op.create_table(
        "dim_field",
        sa.Column("field_code", sa.String, primary_key=True),
        sa.Column("field_name", sa.String, nullable=False),
        schema="core",
    )
    op.create_table(
        "published_rollup",
        sa.Column("parent_code", sa.String, nullable=False),
        sa.Column("parent_level", sa.String, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("vintage", sa.Integer, nullable=False),
        sa.Column("field_code", sa.String, nullable=False),
        *[sa.Column(f, sa.BigInteger) for f in FIGURES],
        sa.Column("units_included", sa.Integer, nullable=False),
        sa.Column("units_not_published", sa.Integer, nullable=False),
        sa.Column("duplicates_removed", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("parent_code", "parent_level", "period_start", "period_end", "vintage", "field_code"),
        schema="core",
    )
    op.create_table(
        "published_indicators",
        sa.Column("unit_code", sa.String, nullable=False),
        sa.Column("unit_level", sa.String, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("vintage", sa.Integer, nullable=False),
        sa.Column("indicator", sa.String, nullable=False),
        sa.Column("indicator_name", sa.String, nullable=False),
        sa.Column("numerator", sa.BigInteger),
        sa.Column("denominator", sa.BigInteger),
        sa.Column("denominator_name", sa.String, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("basis", sa.String),
        sa.PrimaryKeyConstraint("unit_code", "period_start", "period_end", "vintage", "indicator"),
        schema="core",
    )
    sums = ", ".join(f"sum(r.{f}) AS {f}" for f in FIGURES)
    op.execute(f"""
        CREATE VIEW publish.bieu06_by_province_v1 AS
        SELECT r.parent_code AS province_code, r.period_start, r.period_end, r.vintage, {sums},
               max(r.units_included) AS units_included, max(r.units_not_published) AS units_not_published,
               max(r.duplicates_removed) AS duplicates_removed
        FROM core.published_rollup r
        WHERE r.parent_level = 'province' AND {LATEST.format(t='r')}
        GROUP BY r.parent_code, r.period_start, r.period_end, r.vintage
    """)
    op.execute(f"""
        CREATE VIEW publish.bieu06_by_field_v1 AS
        SELECT r.field_code, f.field_name, r.period_start, r.period_end, r.vintage, {', '.join(f'r.{x}' for x in FIGURES)}
        FROM core.published_rollup r LEFT JOIN core.dim_field f ON f.field_code = r.field_code
        WHERE r.parent_level = 'province' AND {LATEST.format(t='r')}
    """)
    op.execute(f"""
        CREATE VIEW publish.indicators_766_v1 AS
        SELECT unit_code, unit_level, period_start, period_end, vintage, indicator, indicator_name,
               numerator, denominator, denominator_name, value, basis
        FROM core.published_indicators i WHERE {LATEST.format(t='i')}
    """)
    for name in ("bieu06_by_province", "bieu06_by_field", "indicators_766"):
        op.execute(f"CREATE VIEW publish.{name} AS SELECT * FROM publish.{name}_v1")


def downgrade() -> None:
    for name in ("bieu06_by_province", "bieu06_by_field", "indicators_766"):
        op.execute(f"DROP VIEW IF EXISTS publish.{name}")
        op.execute(f"DROP VIEW IF EXISTS publish.{name}_v1")
    for table in ("published_indicators", "published_rollup", "dim_field"):
        op.drop_table(table, schema="core")
