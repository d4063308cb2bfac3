"""Series across the reform of the units: splits defined once (an old code the conversion puts into
several new units), and the old-on-new view keyed by the new unit (code and validity), with its name and
the old codes behind each row, the old units' figures before the reform and the unit's own after it.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FIGURES = [
    "received_total", "received_online", "received_direct_postal", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "pending_total", "pending_within_due", "pending_overdue", "returned_withdrawn",
]
SPLITS = """
    CREATE VIEW core.unit_conversion_splits AS
    SELECT old_code, count(DISTINCT new_code) AS new_units,
           string_agg(DISTINCT new_code, ',' ORDER BY new_code) AS new_codes,
           string_agg(DISTINCT merge_type, ',' ORDER BY merge_type) AS merge_types,
           string_agg(DISTINCT old_name, ' | ' ORDER BY old_name) AS old_names,
           count(DISTINCT old_name) > 1 AS names_differ
    FROM core.unit_conversion GROUP BY old_code HAVING count(DISTINCT new_code) > 1
"""


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.bieu06_old_units_on_new_v1")
    op.execute("DROP VIEW IF EXISTS core.unit_conversion_splits")
    op.execute(SPLITS)
    sums = ", ".join(f"sum(p.{f}) AS {f}" for f in FIGURES)
    gated = ", ".join(f"CASE WHEN n.comparable AND b.old_units_published = n.old_units THEN b.{f} END AS {f}"
                      for f in FIGURES)
    own = ", ".join(f"p.{f}" for f in FIGURES)
    op.execute(f"""
        CREATE VIEW publish.bieu06_old_units_on_new_v1 AS
        WITH conv AS (
            SELECT c.*, c.old_code IN (SELECT s.old_code FROM core.unit_conversion_splits s) AS split
            FROM core.unit_conversion c
        ),
        new_units AS (
            SELECT new_code, min(new_name) AS new_name, min(effective_from) AS effective_from,
                   bool_and(merge_type = 'whole' AND NOT split) AS comparable,
                   count(DISTINCT old_code) AS old_units,
                   string_agg(old_code, ',' ORDER BY old_code) AS old_codes,
                   string_agg(old_name, ', ' ORDER BY old_code) AS old_names
            FROM conv GROUP BY new_code
        ),
        before AS (
            SELECT c.new_code, p.period_start, p.period_end, count(DISTINCT p.unit_code) AS old_units_published, {sums}
            FROM conv c
            JOIN new_units n ON n.new_code = c.new_code
            JOIN publish.bieu06_by_unit p ON p.unit_code = c.old_code AND p.period_end < n.effective_from
            GROUP BY c.new_code, p.period_start, p.period_end
        )
        SELECT n.new_code AS unit_code, n.effective_from AS unit_valid_from, n.new_name AS unit_name,
               b.period_start, b.period_end, 'old_units' AS figures_of, n.comparable, n.old_units,
               b.old_units_published, n.old_codes, n.old_names,
               CASE WHEN NOT n.comparable THEN 'split_or_partial_merge'
                    WHEN b.old_units_published < n.old_units THEN 'old_unit_not_published'
                    ELSE 'whole' END AS conversion_status,
               {gated}
        FROM new_units n JOIN before b ON b.new_code = n.new_code
        UNION ALL
        SELECT n.new_code, n.effective_from, n.new_name, p.period_start, p.period_end, 'unit', n.comparable,
               n.old_units, NULL, n.old_codes, n.old_names, 'own_figures', {own}
        FROM new_units n
        JOIN publish.bieu06_by_unit p ON p.unit_code = n.new_code AND p.period_start >= n.effective_from
    """)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS publish.bieu06_old_units_on_new_v1")
    op.execute("DROP VIEW IF EXISTS core.unit_conversion_splits")
    op.execute("""
        CREATE VIEW core.unit_conversion_splits AS
        SELECT old_code, old_name, count(*) AS new_units, string_agg(new_code, ',' ORDER BY new_code) AS new_codes,
               string_agg(merge_type, ',' ORDER BY new_code) AS merge_types
        FROM core.unit_conversion GROUP BY old_code, old_name HAVING count(*) > 1
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
