"""Initial warehouse: staging, core, quality and publish layers.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FIGURES = [
    "received_total", "received_online", "received_direct_postal", "carried_over",
    "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
    "pending_total", "pending_within_due", "pending_overdue", "returned_withdrawn",
]


def _period():
    return [sa.Column("period_start", sa.Date, nullable=False), sa.Column("period_end", sa.Date, nullable=False)]


def _figures():
    return [sa.Column(name, sa.BigInteger) for name in FIGURES]


def upgrade() -> None:
    for schema in ("staging", "core", "quality", "publish"):
        op.execute(sa.schema.CreateSchema(schema, if_not_exists=True))

    op.create_table(
        "dim_unit",
        sa.Column("unit_code", sa.String, nullable=False),
        sa.Column("unit_name", sa.String, nullable=False),
        sa.Column("level", sa.String, nullable=False),
        sa.Column("parent_code", sa.String),
        sa.Column("province_code", sa.String),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "valid_from"),
        schema="core",
    )
    op.create_table(
        "fact_dossier",
        *_period(),
        sa.Column("source_id", sa.String, nullable=False),
        sa.Column("dossier_id", sa.String, nullable=False),
        sa.Column("procedure_code", sa.String),
        sa.Column("field_code", sa.String),
        sa.Column("unit_code", sa.String, nullable=False),
        sa.Column("channel", sa.String),
        sa.Column("received_at", sa.DateTime),
        sa.Column("due_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("returned_at", sa.DateTime),
        sa.Column("status", sa.SmallInteger),
        sa.Column("fee_amount", sa.BigInteger),
        sa.Column("paid_online", sa.Boolean),
        sa.Column("results_digitised", sa.Boolean),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("landed_file", sa.String),
        sa.Column("run_id", sa.String, nullable=False),
        schema="core",
    )
    op.create_table(
        "fact_bieu06",
        sa.Column("unit_code", sa.String, nullable=False),
        *_period(),
        sa.Column("field_code", sa.String, nullable=False),
        *_figures(),
        sa.Column("basis", sa.String, nullable=False),
        sa.Column("source_id", sa.String, nullable=False),
        sa.Column("landed_file", sa.String),
        sa.Column("run_id", sa.String, nullable=False),
        schema="core",
    )
    op.create_table(
        "unit_period_status",
        sa.Column("unit_code", sa.String, nullable=False),
        *_period(),
        sa.Column("unit_name", sa.String),
        sa.Column("unit_level", sa.String),
        sa.Column("source_id", sa.String),
        sa.Column("basis", sa.String),
        sa.Column("coverage_complete", sa.Boolean),
        sa.Column("quality_status", sa.String, nullable=False),
        sa.Column("reason", sa.String),
        sa.Column("run_id", sa.String, nullable=False),
        schema="core",
    )
    op.create_table(
        "bieu06_reconciled",
        sa.Column("unit_code", sa.String, nullable=False),
        *_period(),
        sa.Column("field_code", sa.String, nullable=False),
        *_figures(),
        sa.Column("basis", sa.String, nullable=False),
        sa.Column("source_id", sa.String, nullable=False),
        sa.Column("quality_status", sa.String, nullable=False),
        sa.Column("run_id", sa.String, nullable=False),
        schema="core",
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String, nullable=False),
        *_period(),
        sa.Column("stage", sa.String, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=False),
        sa.Column("detail", sa.Text),
        schema="core",
    )
    op.create_table(
        "findings",
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("check_id", sa.String, nullable=False),
        sa.Column("severity", sa.String, nullable=False),
        sa.Column("source_id", sa.String),
        sa.Column("unit_code", sa.String),
        sa.Column("period_start", sa.Date),
        sa.Column("period_end", sa.Date),
        sa.Column("field_code", sa.String),
        sa.Column("basis", sa.String),
        sa.Column("columns", sa.Text),
        sa.Column("observed", sa.Text),
        sa.Column("expected", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("suggested_fix", sa.Text),
        sa.Column("location", sa.Text),
        schema="quality",
    )
    op.create_table(
        "quarantine",
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("unit_code", sa.String, nullable=False),
        *_period(),
        sa.Column("source_id", sa.String),
        sa.Column("reason", sa.Text, nullable=False),
        schema="quality",
    )
    op.create_table(
        "published_bieu06_by_unit",
        sa.Column("unit_code", sa.String, nullable=False),
        sa.Column("unit_name", sa.String),
        sa.Column("unit_level", sa.String),
        *_period(),
        sa.Column("vintage", sa.Integer, nullable=False),
        sa.Column("quality_status", sa.String, nullable=False),
        sa.Column("source_id", sa.String),
        sa.Column("basis", sa.String),
        *_figures(),
        sa.Column("run_id", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "period_start", "period_end", "vintage"),
        schema="core",
    )
    op.create_table(
        "vintages",
        *_period(),
        sa.Column("vintage", sa.Integer, nullable=False),
        sa.Column("content_sha256", sa.String, nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=False),
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("period_start", "period_end", "vintage"),
        schema="publish",
    )
    columns = ", ".join(["unit_code", "unit_name", "unit_level", "period_start", "period_end", "vintage",
                         "quality_status", "source_id", "basis", *FIGURES])
    op.execute(f"CREATE VIEW publish.bieu06_by_unit_history_v1 AS SELECT {columns} FROM core.published_bieu06_by_unit")
    op.execute(f"""
        CREATE VIEW publish.bieu06_by_unit_v1 AS
        SELECT {columns} FROM core.published_bieu06_by_unit p
        WHERE vintage = (SELECT max(v.vintage) FROM publish.vintages v
                         WHERE v.period_start = p.period_start AND v.period_end = p.period_end)
    """)
    op.execute("CREATE VIEW publish.bieu06_by_unit AS SELECT * FROM publish.bieu06_by_unit_v1")


def downgrade() -> None:
    for view in ("bieu06_by_unit", "bieu06_by_unit_v1", "bieu06_by_unit_history_v1"):
        op.execute(f"DROP VIEW IF EXISTS publish.{view}")
    for schema, table in [("publish", "vintages"), ("core", "published_bieu06_by_unit"), ("quality", "quarantine"),
                          ("quality", "findings"), ("core", "runs"), ("core", "bieu06_reconciled"),
                          ("core", "unit_period_status"), ("core", "fact_bieu06"), ("core", "fact_dossier"),
                          ("core", "dim_unit")]:
        op.drop_table(table, schema=schema)
