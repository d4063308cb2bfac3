"""publish.bieu06_revisions_v2 in a fixed order (quarter, level, unit, item, vintage). On DuckDB (2.0) with
more than one thread, reading the unordered view a few rows at a time (`SELECT * … LIMIT 5`, what an
analyst types first) never returned: every worker thread waited. Ordered, the view is read whole before
the limit, and a listing of revisions reads in the order an analyst expects. Same columns, same rows.

Revision ID: 0011
Revises: 0010
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ORDER = "ORDER BY k.period_start, k.period_end, k.level, k.unit_code, k.item, k.to_vintage"


def _analyst_views():
    """Migration 0009, which defined the view: the same text, ordered or not."""
    spec = importlib.util.spec_from_file_location("tthc_migration_0009", Path(__file__).with_name("0009_analyst_views.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _revisions_view(order: str) -> str:
    views = _analyst_views()
    sql = views.REVISIONS_V2_SQL.format(items=views._revision_items(), label=views.LABEL.format(t="k."))
    return sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1).rstrip() + f"\n    {order}\n"


def upgrade() -> None:
    op.execute(_revisions_view(ORDER))


def downgrade() -> None:
    op.execute(_revisions_view(""))
