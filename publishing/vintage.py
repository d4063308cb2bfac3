"""The files of one published vintage, written to a staging folder and renamed into place, so
that a reader sees all of them or none: Parquet and CSV of every publish view, the data
package, SDMX-CSV, the official workbook and the report."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from publishing import report
from publishing.files import write_datapackage, write_sdmx_csv, write_table
from publishing.workbook import write_bieu06_workbook
from tthc.form import FACT_FIGURES
from tthc.periods import Period


@dataclass(frozen=True)
class Publication:
    """What the files of a vintage are made for: the province and its fields."""

    province_code: str
    province_name: str
    field_names: dict[str, str]


def report_data(period: Period, vintage: int, tables: dict[str, pd.DataFrame], inputs: dict,
                publication: Publication) -> report.ReportData:
    """The report of a vintage from its tables and the warehouse's trend, findings and call-back list."""
    province = tables["bieu06_by_province"]
    headline = {f: (None if province.empty or pd.isna(province[f].iloc[0]) else int(province[f].iloc[0]))
                for f in FACT_FIGURES}
    return report.ReportData(
        province_name=publication.province_name, period_label=period.label, period_start=period.start,
        period_end=period.end, vintage=vintage, headline=headline, units=tables["bieu06_by_unit"], **inputs)


def files_match(folder: Path, content_sha256: str) -> bool:
    """The vintage folder holds the files of the figures the warehouse has under this hash."""
    try:
        descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return descriptor.get("tthc:content_sha256") == content_sha256


def stage_vintage_files(folder: Path, period: Period, vintage: int, tables: dict[str, pd.DataFrame],
                        form: pd.DataFrame, report_inputs: dict, publication: Publication,
                        content_sha256: str) -> Path:
    """Writes the vintage's files into a staging folder beside `folder` and returns it;
    `put_in_place` renames it into place. A staging folder left by a killed publication is
    removed first (the caller holds the period's warehouse lock)."""
    data = report_data(period, vintage, tables, report_inputs, publication)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".staging-{folder.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = folder.parent / f".staging-{folder.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for name, frame in tables.items():
            write_table(frame, staging, name)
        write_datapackage(staging, tables, name=f"tthc-bieu06-{publication.province_code}-{period.label.lower()}",
                          title=f"Biểu 06 {publication.province_name} {period.label}", period=period.as_dict(),
                          vintage=vintage, content_sha256=content_sha256)
        write_sdmx_csv(tables["bieu06_by_unit"], staging / "bieu06_by_unit.sdmx.csv", period.label)
        write_bieu06_workbook(staging / f"Bieu06_{publication.province_code}_{period.label}.xlsx",
                              province_name=publication.province_name, period_start=period.start,
                              period_end=period.end, period_label=period.label, rows=form, vintage=vintage)
        report.write_report(staging / "report.html", data)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def put_in_place(staging: Path, folder: Path) -> Path:
    """The staged files become the vintage folder; files already there that the warehouse does not
    stand behind (written for another warehouse) are kept aside as `.replaced-v<n>-<id>`."""
    if folder.exists() or folder.is_symlink():
        os.replace(folder, folder.parent / f".replaced-{folder.name}-{uuid.uuid4().hex[:8]}")
    os.replace(staging, folder)
    return folder
