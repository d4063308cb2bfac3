"""Pending dossiers awaiting supplements, fees or a decision ("chờ bổ sung"), a figure beside the
form: a column of every Biểu 06 table, appended to the published views (docs/canonical-model.md).
Appending a column keeps each view's contract version: its earlier columns are unchanged.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FIGURES = [
    "received_total", "received_online", "received_direct_postal", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "pending_total", "pending_within_due", "pending_overdue", "returned_withdrawn",
]
TABLES = ("core.fact_bieu06", "staging.fact_bieu06", "core.bieu06_reconciled", "staging.bieu06_reconciled",
          "core.bieu06_rollup", "staging.bieu06_rollup", "core.published_bieu06_by_unit", "core.published_rollup")
LATEST = """vintage = (SELECT max(v.vintage) FROM publish.vintages v
                       WHERE v.period_start = {t}.period_start AND v.period_end = {t}.period_end)"""


def _views(figures: list[str], beside: list[str], beside_known: bool = True) -> list[str]:
    """The published views over `figures`, then the figures beside the form (0001, 0002, 0004); with
    `beside_known` False those columns stay, null, so that no dependent view has to be rebuilt."""
    def plain(f: str, prefix: str = "") -> str:
        return f"{prefix}{f}" if beside_known else f"NULL::BIGINT AS {f}"

    def total(f: str) -> str:
        # a province or field total beside the form only where every unit row gives it
        return f"CASE WHEN count(r.{f}) = count(*) THEN CAST(sum(r.{f}) AS BIGINT) END AS {f}" if beside_known \
            else f"NULL::BIGINT AS {f}"

    unit = ", ".join(["unit_code", "unit_name", "unit_level", "period_start", "period_end", "vintage",
                      "quality_status", "source_id", "basis", *figures, *(plain(f) for f in beside)])
    union = " UNION ALL ".join(
        f"SELECT unit_code, period_start, period_end, vintage, '{f}' AS figure, {f} AS value "
        f"FROM core.published_bieu06_by_unit" for f in [*figures, *(beside if beside_known else [])])
    return [
        f"CREATE OR REPLACE VIEW publish.bieu06_by_unit_history_v1 AS SELECT {unit} FROM core.published_bieu06_by_unit",
        f"""CREATE OR REPLACE VIEW publish.bieu06_by_unit_v1 AS
            SELECT {unit} FROM core.published_bieu06_by_unit p WHERE {LATEST.format(t='p')}""",
        "CREATE OR REPLACE VIEW publish.bieu06_by_unit AS SELECT * FROM publish.bieu06_by_unit_v1",
        f"""CREATE OR REPLACE VIEW publish.bieu06_by_province_v1 AS
            SELECT r.parent_code AS province_code, r.period_start, r.period_end, r.vintage,
                   {', '.join(f'sum(r.{f}) AS {f}' for f in figures)},
                   max(r.units_included) AS units_included, max(r.units_not_published) AS units_not_published,
                   max(r.duplicates_removed) AS duplicates_removed
                   {''.join(f', {total(f)}' for f in beside)}
            FROM core.published_rollup r
            WHERE r.parent_level = 'province' AND {LATEST.format(t='r')}
            GROUP BY r.parent_code, r.period_start, r.period_end, r.vintage""",
        "CREATE OR REPLACE VIEW publish.bieu06_by_province AS SELECT * FROM publish.bieu06_by_province_v1",
        f"""CREATE OR REPLACE VIEW publish.bieu06_by_field_v1 AS
            SELECT r.field_code, f.field_name, r.period_start, r.period_end, r.vintage,
                   {', '.join([*(f'r.{x}' for x in figures), *(plain(x, 'r.') for x in beside)])}
            FROM core.published_rollup r LEFT JOIN core.dim_field f ON f.field_code = r.field_code
            WHERE r.parent_level = 'province' AND {LATEST.format(t='r')}""",
        "CREATE OR REPLACE VIEW publish.bieu06_by_field AS SELECT * FROM publish.bieu06_by_field_v1",
        f"""CREATE OR REPLACE VIEW publish.bieu06_revisions_v1 AS
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
        WHERE o.unit_code IS NULL OR n.unit_code IS NULL OR o.value IS DISTINCT FROM n.value""",
    ]


def _has_column(qualified: str, column: str) -> bool:
    schema, name = qualified.split(".")
    return op.get_bind().execute(sa.text(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
        "AND column_name = :c"), {"s": schema, "t": name, "c": column}).scalar() > 0


def upgrade() -> None:
    for table in TABLES:
        schema, name = table.split(".")
        op.add_column(name, sa.Column("pending_paused", sa.BigInteger), schema=schema)
    for statement in _views(FIGURES, ["pending_paused"]):
        if " AS SELECT * FROM " in statement and _has_column(statement.split()[4], "pending_paused"):
            continue  # an alias a later version already widened (its downgrade leaves the aliases)
        op.execute(statement)


def downgrade() -> None:
    for statement in _views(FIGURES, ["pending_paused"], beside_known=False):
        if " AS SELECT * FROM " not in statement:  # the aliases keep the columns they have
            op.execute(statement)
    for table in TABLES:
        schema, name = table.split(".")
        op.drop_column(name, "pending_paused", schema=schema)
