"""The analyst's warehouse: `publish` answers the usual questions alone (units with their district
and province, unit status and reasons, figures by unit × field, by district territory, the call-back
list, the codes' meanings), a quarter label on the main views, and 64-bit province totals
(docs/data-dictionary.md). Comments come from the data dictionary after every migration
(warehouse/comments.py).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FIGURES = [
    "received_total", "received_online", "received_direct_postal", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "pending_total", "pending_within_due", "pending_overdue", "returned_withdrawn", "pending_paused",
]
# the form's figures add up everywhere; pending_paused only where every row gives it (0007)
ADDITIVE = FIGURES[:-1]
LATEST = """vintage = (SELECT max(v.vintage) FROM publish.vintages v
                       WHERE v.period_start = {t}.period_start AND v.period_end = {t}.period_end)"""
LABEL = ("CAST(EXTRACT(YEAR FROM {t}period_end) AS VARCHAR) || '-Q' || "
         "CAST(EXTRACT(QUARTER FROM {t}period_end) AS VARCHAR)")
# the day the 2025 reform of administrative units took effect (Resolution 202/2025/QH15)
REFORM = "DATE '2025-07-01'"
UNIT_COLUMNS = ["unit_code", "unit_name", "unit_level", "period_start", "period_end", "vintage", "quality_status",
                "source_id", "basis", *FIGURES]
CALLBACK_COLUMNS = [
    sa.Column("unit_code", sa.String, nullable=False), sa.Column("unit_name", sa.String),
    sa.Column("unit_level", sa.String), sa.Column("contact", sa.String), sa.Column("severity", sa.String, nullable=False),
    sa.Column("field_code", sa.String), sa.Column("figure_labels", sa.String), sa.Column("reported", sa.String),
    sa.Column("probable", sa.String), sa.Column("message", sa.Text, nullable=False),
    sa.Column("check_id", sa.String, nullable=False), sa.Column("source_id", sa.String),
    sa.Column("location", sa.Text), sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False), sa.Column("run_id", sa.String, nullable=False),
]


def _sums(figures: list[str]) -> str:
    return ", ".join([*(f"CAST(sum(r.{f}) AS BIGINT) AS {f}" for f in figures if f in ADDITIVE),
                      *(f"CASE WHEN count(r.{f}) = count(*) THEN CAST(sum(r.{f}) AS BIGINT) END AS {f}"
                        for f in figures if f not in ADDITIVE)])


def _revision_items() -> str:
    """Every item a vintage publishes: each unit's figures and quality flag, the province's totals."""
    unit = [f"SELECT 'unit' AS level, unit_code, period_start, period_end, vintage, '{f}' AS item, "
            f"CAST({f} AS BIGINT) AS value, CAST(NULL AS VARCHAR) AS status FROM core.published_bieu06_by_unit"
            for f in FIGURES]
    flag = ["SELECT 'unit', unit_code, period_start, period_end, vintage, 'quality_status', CAST(NULL AS BIGINT), "
            "quality_status FROM core.published_bieu06_by_unit"]
    province = [f"SELECT 'province', r.parent_code, r.period_start, r.period_end, r.vintage, '{f}', "
                f"{_sums([f]).rsplit(' AS ', 1)[0]}, CAST(NULL AS VARCHAR) FROM core.published_rollup r "
                f"WHERE r.parent_level = 'province' GROUP BY r.parent_code, r.period_start, r.period_end, r.vintage"
                for f in FIGURES]
    return " UNION ALL ".join([*unit, *flag, *province])


REVISIONS_V2_SQL = """
    CREATE VIEW publish.bieu06_revisions_v2 AS
    WITH items AS ({items}),
    pairs AS (
        SELECT v.period_start, v.period_end, p.vintage AS from_vintage, v.vintage AS to_vintage, v.reason
        FROM publish.vintages v
        JOIN publish.vintages p ON p.period_start = v.period_start AND p.period_end = v.period_end
                               AND p.vintage = v.vintage - 1
    ),
    keys AS (
        SELECT DISTINCT pr.period_start, pr.period_end, pr.from_vintage, pr.to_vintage, pr.reason, i.level,
                        i.unit_code, i.item
        FROM pairs pr JOIN items i ON i.period_start = pr.period_start AND i.period_end = pr.period_end
                                  AND i.vintage IN (pr.from_vintage, pr.to_vintage)
    )
    SELECT k.level, k.unit_code, k.period_start, k.period_end, {label} AS period_label, k.item,
           k.from_vintage, k.to_vintage, o.value AS old_value, n.value AS new_value,
           o.status AS old_status, n.status AS new_status,
           CASE WHEN o.unit_code IS NULL THEN 'published' WHEN n.unit_code IS NULL THEN 'withdrawn'
                ELSE 'revised' END AS change, k.reason
    FROM keys k
    LEFT JOIN items o ON o.level = k.level AND o.unit_code = k.unit_code AND o.period_start = k.period_start
         AND o.period_end = k.period_end AND o.item = k.item AND o.vintage = k.from_vintage
    LEFT JOIN items n ON n.level = k.level AND n.unit_code = k.unit_code AND n.period_start = k.period_start
         AND n.period_end = k.period_end AND n.item = k.item AND n.vintage = k.to_vintage
    WHERE o.unit_code IS NULL OR n.unit_code IS NULL OR o.value IS DISTINCT FROM n.value
       OR o.status IS DISTINCT FROM n.status
"""


def upgrade() -> None:
    op.create_table(
        "published_bieu06_by_unit_field",
        sa.Column("unit_code", sa.String, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("vintage", sa.Integer, nullable=False),
        sa.Column("field_code", sa.String, nullable=False),
        *[sa.Column(f, sa.BigInteger) for f in FIGURES],
        sa.PrimaryKeyConstraint("unit_code", "period_start", "period_end", "vintage", "field_code"),
        schema="core",
    )
    for schema in ("quality", "staging"):
        op.create_table("callback", *[c.copy() for c in CALLBACK_COLUMNS], schema=schema)
    op.create_table(
        "code_labels",
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("code", sa.String, nullable=False),
        sa.Column("code_label", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("kind", "code"),
        schema="publish",
    )

    # version 2 of the main views: a quarter label, and 64-bit totals (v1 stays as it was)
    for schema in ("core", "staging"):
        op.add_column("unit_period_status", sa.Column("history_seen", sa.String), schema=schema)
    unit = ", ".join(UNIT_COLUMNS)
    label = LABEL.format(t="")
    op.execute(f"CREATE VIEW publish.bieu06_by_unit_history_v2 AS "
               f"SELECT {unit}, {label} AS period_label FROM core.published_bieu06_by_unit")
    op.execute(f"""CREATE VIEW publish.bieu06_by_unit_v2 AS
        SELECT {unit}, {label} AS period_label FROM core.published_bieu06_by_unit p WHERE {LATEST.format(t='p')}""")
    op.execute(f"""CREATE VIEW publish.bieu06_by_field_v2 AS
        SELECT r.field_code, f.field_name, r.period_start, r.period_end, r.vintage,
               {', '.join(f'r.{x}' for x in FIGURES)}, {LABEL.format(t='r.')} AS period_label
        FROM core.published_rollup r LEFT JOIN core.dim_field f ON f.field_code = r.field_code
        WHERE r.parent_level = 'province' AND {LATEST.format(t='r')}""")
    op.execute(f"""CREATE VIEW publish.bieu06_by_province_v2 AS
        SELECT r.parent_code AS province_code, r.period_start, r.period_end, r.vintage,
               {_sums(FIGURES[:-1])},
               max(r.units_included) AS units_included, max(r.units_not_published) AS units_not_published,
               max(r.duplicates_removed) AS duplicates_removed, {_sums(FIGURES[-1:])},
               {LABEL.format(t='r.')} AS period_label
        FROM core.published_rollup r
        WHERE r.parent_level = 'province' AND {LATEST.format(t='r')}
        GROUP BY r.parent_code, r.period_start, r.period_end, r.vintage""")
    # the aliases follow the newest version; bieu06_by_unit has dependent views: a column appended
    op.execute("CREATE OR REPLACE VIEW publish.bieu06_by_unit AS SELECT * FROM publish.bieu06_by_unit_v2")
    for name in ("bieu06_by_field", "bieu06_by_province"):
        op.execute(f"DROP VIEW publish.{name}")
        op.execute(f"CREATE VIEW publish.{name} AS SELECT * FROM publish.{name}_v2")

    op.execute(f"""CREATE VIEW publish.units_v1 AS
        SELECT u.unit_code, u.unit_name, u.level AS unit_level,
               CASE WHEN d.level = 'district' THEN d.unit_code END AS district_code,
               CASE WHEN d.level = 'district' THEN d.unit_name END AS district_name,
               u.province_code, p.unit_name AS province_name,
               CASE WHEN u.valid_to < {REFORM} THEN 'before_2025_07_01'
                    WHEN u.valid_from >= {REFORM} THEN 'from_2025_07_01' ELSE 'both' END AS unit_system,
               u.valid_from, u.valid_to
        FROM core.dim_unit u
        LEFT JOIN core.dim_unit d ON d.unit_code = u.parent_code AND d.valid_from <= u.valid_from
             AND u.valid_from <= d.valid_to AND d.level IN ('district', 'province')
        LEFT JOIN core.dim_unit p ON p.unit_code = u.province_code AND p.level = 'province'
             AND p.valid_from <= u.valid_to AND u.valid_from <= p.valid_to""")
    op.execute(f"""CREATE VIEW publish.unit_status_v1 AS
        SELECT s.unit_code, s.unit_name, s.unit_level, s.period_start, s.period_end,
               {LABEL.format(t='s.')} AS period_label, s.quality_status,
               s.quality_status IN ('ok', 'warning') AS published, s.reason, s.source_id, s.basis, s.history_seen,
               s.run_id
        FROM core.unit_period_status s""")
    op.execute(f"""CREATE VIEW publish.bieu06_by_unit_field_v1 AS
        SELECT p.unit_code, s.unit_name, s.unit_level, p.period_start, p.period_end, p.vintage, p.field_code,
               f.field_name, {', '.join(f'p.{x}' for x in FIGURES)}, {LABEL.format(t='p.')} AS period_label
        FROM core.published_bieu06_by_unit_field p
        LEFT JOIN core.published_bieu06_by_unit s ON s.unit_code = p.unit_code AND s.period_start = p.period_start
             AND s.period_end = p.period_end AND s.vintage = p.vintage
        LEFT JOIN core.dim_field f ON f.field_code = p.field_code
        WHERE p.{LATEST.format(t='p')}""")
    op.execute(f"""CREATE VIEW publish.bieu06_by_district_territory_v1 AS
        SELECT r.parent_code AS district_code, max(d.unit_name) AS district_name, r.period_start, r.period_end,
               r.vintage, {_sums(FIGURES)},
               max(r.units_included) AS units_included, max(r.units_not_published) AS units_not_published,
               max(r.duplicates_removed) AS duplicates_removed, {LABEL.format(t='r.')} AS period_label
        FROM core.published_rollup r
        LEFT JOIN core.dim_unit d ON d.unit_code = r.parent_code AND d.level = 'district'
             AND d.valid_from <= r.period_end AND r.period_start <= d.valid_to
        WHERE r.parent_level = 'district' AND {LATEST.format(t='r')}
        GROUP BY r.parent_code, r.period_start, r.period_end, r.vintage""")
    op.execute(f"""CREATE VIEW publish.callback_v1 AS
        SELECT unit_code, unit_name, unit_level, contact, severity, field_code, figure_labels, reported, probable,
               message, check_id, source_id, location, period_start, period_end,
               {label} AS period_label
        FROM quality.callback""")
    for name in ("units", "unit_status", "bieu06_by_unit_field", "bieu06_by_district_territory", "callback"):
        op.execute(f"CREATE VIEW publish.{name} AS SELECT * FROM publish.{name}_v1")
    op.execute(REVISIONS_V2_SQL.format(items=_revision_items(), label=LABEL.format(t="k.")))
    op.execute("CREATE VIEW publish.bieu06_revisions AS SELECT * FROM publish.bieu06_revisions_v2")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.bieu06_revisions")
    op.execute("DROP VIEW IF EXISTS publish.bieu06_revisions_v2")
    for name in ("units", "unit_status", "bieu06_by_unit_field", "bieu06_by_district_territory", "callback"):
        op.execute(f"DROP VIEW IF EXISTS publish.{name}")
        op.execute(f"DROP VIEW IF EXISTS publish.{name}_v1")
    for name in ("bieu06_by_field", "bieu06_by_province"):
        op.execute(f"DROP VIEW publish.{name}")
        op.execute(f"CREATE VIEW publish.{name} AS SELECT * FROM publish.{name}_v1")
    # a view with dependents cannot lose a column: the alias keeps period_label, computed from v1
    op.execute(f"CREATE OR REPLACE VIEW publish.bieu06_by_unit AS "
               f"SELECT *, {LABEL.format(t='')} AS period_label FROM publish.bieu06_by_unit_v1")
    for name in ("bieu06_by_unit_v2", "bieu06_by_unit_history_v2", "bieu06_by_field_v2", "bieu06_by_province_v2"):
        op.execute(f"DROP VIEW publish.{name}")
    op.drop_table("code_labels", schema="publish")
    for schema in ("quality", "staging"):
        op.drop_table("callback", schema=schema)
    op.drop_table("published_bieu06_by_unit_field", schema="core")
    for schema in ("core", "staging"):
        op.drop_column("unit_period_status", "history_seen", schema=schema)
