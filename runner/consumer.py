"""An example consumer of the published tables, as a report generator would be: it reads only
`publish` views, for the period and vintage named by the asset event that woke it."""
from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from tthc.config import default_warehouse_url, var_dir
from warehouse.db import engine_for


def summarise(period_start: str | None = None, period_end: str | None = None, vintage: int | None = None,
              warehouse_url: str | None = None, out_dir: Path | None = None) -> Path:
    """Without an asset event (a manual run), the newest vintage of the newest period."""
    with engine_for(warehouse_url or default_warehouse_url()) as engine, engine.connect() as conn:
        if period_start is None:
            latest = conn.execute(sa.text(
                "SELECT period_start, period_end, vintage FROM publish.vintages "
                "ORDER BY period_end DESC, vintage DESC LIMIT 1")).all()
            if not latest:
                raise LookupError("nothing is published yet")
            period_start, period_end, vintage = (str(latest[0][0]), str(latest[0][1]), latest[0][2])
        province = conn.execute(sa.text(
            "SELECT received_total, resolved_total, resolved_late, pending_overdue, units_included "
            "FROM publish.bieu06_by_province_v1 WHERE period_start = :s AND period_end = :e AND vintage = :v"),
            {"s": period_start, "e": period_end, "v": vintage}).mappings().all()
        rates = conn.execute(sa.text(
            "SELECT indicator, numerator, denominator, denominator_name, value FROM publish.indicators_766_v1 "
            "WHERE unit_level = 'province' AND period_start = :s AND period_end = :e AND vintage = :v "
            "ORDER BY indicator"), {"s": period_start, "e": period_end, "v": vintage}).mappings().all()
    summary = {"period_start": period_start, "period_end": period_end, "vintage": vintage,
               "province": [dict(r) for r in province], "indicators_766": [dict(r) for r in rates]}
    folder = out_dir or var_dir() / "downstream"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"summary_{period_start}_v{vintage}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return path
