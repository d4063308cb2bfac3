"""The stages of a quarterly run, each a function of (run context) → counts, in `STAGES` order.

The DAG calls them one task each; `tthc run` and the bench call them in a row. Stages hand each
other files in the run folder (`RunFiles`, named once), never data frames.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runner.run_files import RunFiles
from tthc.config import Settings, default_warehouse_url, load_settings, var_dir
from tthc.connections import redact_url
from tthc.findings import FINDINGS_SCHEMA, Finding, finding, findings_table
from tthc.form import FACT_FIGURES, quarter_label
from tthc.landing import RECORDS, landed_path, landing_dir, period_landing
from tthc.periods import Period, check_started, from_data_interval
from tthc.units import units_for_province, units_in_force

log = logging.getLogger(__name__)


OVER_BUDGET = "RunBudgetSpent"  # how the failure of a source stopped by the run's time budget begins


class NothingPublished(RuntimeError):
    """The quarter ends without a publication: no source landed (load refuses: the warehouse keeps
    its previous state), or no unit has figures that may be published (publish makes no vintage;
    the newest one, if any, stays). `tthc run` exits 4 with this message; in Airflow the task fails."""


class VarDirUnusable(RuntimeError):
    """The working folder (TTHC_VAR_DIR) is not a folder this process can write: nothing can be
    landed, locked or published. `tthc run` exits 7 before doing anything."""


def check_var_dir(var: Path) -> None:
    """Create the working folder if needed and write (then remove) a file in it, or raise
    `VarDirUnusable` naming it: found before anything is extracted, not as a traceback halfway."""
    var = Path(var)
    if var.exists() and not var.is_dir():
        why = "it is a file, not a folder"
    else:
        probe = var / f".write-check-{os.getpid()}"
        try:
            var.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
            return
        except OSError as exc:
            why = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(probe)
                                              and str(exc.filename) != str(var) else "")
    raise VarDirUnusable(
        f"the working folder {var} (TTHC_VAR_DIR) cannot be written: {why}. Landing, runs, locks, published files "
        "and the embedded warehouse go there: point TTHC_VAR_DIR at a writable folder (or make this one "
        "writable); nothing was extracted, loaded or published.")


class PublicationRefused(NothingPublished):
    """`reliability.on_source_failure: refuse` and a source failed in this run: publish makes no
    new vintage (the newest one, if any, stays). A NothingPublished: `tthc run` exits 4."""


@dataclass
class RunContext:
    settings: Settings
    period: Period
    run_id: str
    var: Path
    warehouse_url: str
    note: str | None = None  # the operator's reason for this run, kept with a new vintage
    full_extract: bool = False  # ignore watermarks: land every source's whole period window

    @property
    def run_dir(self) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.run_id).lstrip(".") or "_"
        path = self.var / "runs" / self.period.label / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def files(self) -> RunFiles:
        return RunFiles(self.run_dir)

    def landed(self) -> dict:
        """sources.json: what canonicalize found landed (rows, files), missing and each source's basis."""
        return json.loads(self.files.sources.read_text(encoding="utf-8"))

    @cached_property
    def units(self) -> pd.DataFrame:
        return units_for_province(self.settings)

    @cached_property
    def units_in_force(self) -> pd.DataFrame:
        return units_in_force(self.units, self.period.end)

    @cached_property
    def conversion(self):
        """The official conversion with the province's corrections, and what checking it found
        (tthc.units.checked_conversion), read once per stage."""
        from tthc.units import checked_conversion

        return checked_conversion(self.settings)

    @cached_property
    def reform_date(self):
        """The day the reform of the units took effect, as the official lists' file names give it."""
        from tthc.units import ReferenceFiles

        return ReferenceFiles.find(self.settings.reference_data).reform_date

    @property
    def first_after_reform(self) -> bool:
        """Whether the period is the first after the reform: the previous one ended before it."""
        previous = self.period.previous(self.settings.period_convention)
        return previous.end < self.reform_date <= self.period.start


def make_context(period_label: str | None = None, run_id: str | None = None, warehouse_url: str | None = None,
                 data_interval: tuple[datetime, datetime] | None = None, settings: Settings | None = None,
                 note: str | None = None, full_extract: bool = False) -> RunContext:
    settings = settings or load_settings()
    if data_interval is not None:
        period = from_data_interval(*data_interval, settings.timezone)
    elif period_label:
        period = check_started(settings.period(period_label), datetime.now(ZoneInfo(settings.timezone)).date())
    else:
        raise ValueError("a run needs a period: a label like 2024-Q3 or an Airflow data interval")
    run_id = run_id or "manual__" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return RunContext(settings, period, run_id, var_dir(), warehouse_url or default_warehouse_url(), note,
                      full_extract)


def source_ids(settings: Settings | None = None) -> list[str]:
    return [s.id for s in (settings or load_settings()).sources]


def extract(ctx: RunContext, source_id: str, deadline: float | None = None) -> str:
    """Land one source; `deadline` (time.monotonic()) ends it when the run's time budget is spent."""
    from extractors.registry import extract_source

    return str(extract_source(ctx.settings.source(source_id), ctx.period, ctx.var, ctx.run_id, ctx.settings,
                              full=ctx.full_extract, deadline=deadline, budget_seconds=ctx.settings.run_budget_seconds))


def canonicalize(ctx: RunContext) -> dict:
    from extractors.registry import basis_of, landed_sources
    from transforms.canonicalize import canonical_dossiers, self_reported_figures

    landed, missing = landed_sources(ctx.settings, ctx.period, ctx.var)
    reshape, reform_findings = across_reform(ctx)
    dossiers, f1 = canonical_dossiers(landed, ctx.period, ctx.files.dossiers,
                                      several_units_out=ctx.files.ids_under_several_units,
                                      plausible_from=ctx.settings.plausible_from, reshape=reshape)
    reported, f2 = self_reported_figures(landed, ctx.period, ctx.files.self_reported,
                                         totals_out=ctx.files.self_reported_totals)
    findings = f1 + f2 + reform_findings() + [
        finding("config.unit_repeated",
                f"Mã đơn vị {dept['code']} ({dept.get('name')}) khai báo lại trong {ctx.settings.province_file.name}: "
                "chỉ dùng dòng đầu tiên", ctx.period.start, ctx.period.end, unit_code=str(dept["code"]),
                location=str(ctx.settings.province_file))
        for dept in ctx.settings.repeated_departments
    ] + [
        finding("extract.source_missing", f"Nguồn {source_id} không lấy được số liệu{_over_budget(why)}: {why}",
                ctx.period.start, ctx.period.end, source_id=source_id, location=why)
        for source_id, why in missing.items()
    ] + [
        finding("extract.stale_landing",
                f"Nguồn {s.source_id} lỗi khi trích xuất lúc {s.stale['failed_at']}{_over_budget(s.stale['failure'])} "
                f"({s.stale['failure']}); "
                f"dùng lại lần trích xuất thành công gần nhất của kỳ {ctx.period.label}, lúc "
                f"{s.manifest.extracted_at} (lần chạy {s.manifest.run_id}): số liệu các đơn vị nguồn này phụ trách "
                "giữ như lần đó, có thể chưa cập nhật"
                + ("; cấu hình reliability.on_source_failure: refuse nên kỳ này không công bố phiên bản mới"
                   if ctx.settings.on_source_failure == "refuse" else ""),
                ctx.period.start, ctx.period.end, source_id=s.source_id, location=s.stale["failure"],
                observed=s.manifest.extracted_at)
        for s in landed if s.stale
    ] + [
        finding("extract.source_empty",
                f"Nguồn {s.source_id} đã trích xuất nhưng không có bản ghi nào của kỳ {ctx.period.label}: "
                + ("các đơn vị nguồn này phụ trách không được công bố số 0 từ nguồn này (lấy từ nguồn khác "
                   "hoặc báo chưa có số liệu)" if s.basis == RECORDS else "chưa nhận được biểu mẫu nào của kỳ"),
                ctx.period.start, ctx.period.end, source_id=s.source_id, basis=s.basis, observed="0")
        for s in landed if not s.manifest.rows
    ] + reference_findings(ctx)
    _write_findings(ctx.files.findings_canonicalize, findings)
    state = {"landed": {s.source_id: {"rows": s.manifest.rows, "files": s.manifest.files,
                                      "errors": len(s.manifest.errors)} for s in landed},
             "missing": missing,
             # sources whose latest attempt failed, kept on their last good landing (docs/extractors.md)
             "stale": {s.source_id: {**s.stale, "landed_at": s.manifest.extracted_at,
                                     "landed_run_id": s.manifest.run_id} for s in landed if s.stale},
             # every source whose latest attempt failed, with why (stale or missing)
             "failed": {**{s.source_id: s.stale["failure"] for s in landed if s.stale},
                        **{source_id: why for source_id, why in missing.items()
                           if (landing_dir(ctx.var, ctx.period, source_id) / "failed.json").exists()}},
             # what each source's figures rest on ("records" / "self_reported"), for validate and reconcile
             "bases": {source.id: basis_of(source) for source in ctx.settings.sources}}
    ctx.files.sources.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"dossiers": dossiers, "self_reported_rows": reported, "missing_sources": sorted(missing),
            "stale_sources": sorted(state["stale"]),
            "run_dir": str(ctx.run_dir)}


def _over_budget(failure: str) -> str:
    """What an officer reads when a source was stopped by the run's time budget."""
    return " vì hết thời gian cho phép của cả lần chạy (reliability.run_budget_seconds)" \
        if failure.startswith(f"{OVER_BUDGET}:") else ""


def derive(ctx: RunContext) -> dict:
    """The province's figures from the records, and how each rule set of `definitions.explain_against`
    would move them, over the dossiers of the sources that use that vendor's preset."""
    from transforms.derive import derive_figures
    from transforms.explain import MOVE_COLUMNS, explain

    rows = derive_figures(ctx.files.dossiers, ctx.period, ctx.files.derived, ctx.settings.rule_set)
    explained = [explain(ctx.files.dossiers, ctx.period, ctx.settings.rule_set, against, sources)
                 for against in ctx.settings.explain_against
                 if (sources := vendor_sources(ctx.settings, against.name))]
    moves = pd.concat(explained) if explained else pd.DataFrame(columns=MOVE_COLUMNS)
    moves.to_parquet(ctx.files.definition_moves, index=False)
    return {"derived_rows": rows, "path": str(ctx.files.derived), "definition_moves": len(moves)}


def vendor_sources(settings: Settings, vendor: str) -> list[str]:
    """The sources read with a vendor's preset: the dossiers that vendor's own report counts."""
    return [s.id for s in settings.sources if s.spec.get("preset") == vendor]


def _bieu06_rows(ctx: RunContext) -> pd.DataFrame:
    tables = [pq.read_table(path) for path in (ctx.files.derived, ctx.files.self_reported)]
    frame = pa.concat_tables(tables).to_pandas()
    for name in FACT_FIGURES:
        frame[name] = frame[name].astype("Int64")
    return frame


def validate(ctx: RunContext) -> dict:
    """Every GX suite and record-level check; findings, GX results and Data Docs, the call-back list."""
    from validations.quarter import validate_quarter
    from validations.unit_quarters import history_since
    from warehouse.history import earlier_figures, published_figures

    settings, period = ctx.settings, ctx.period
    earlier = earlier_figures(ctx.warehouse_url, period.start, history_since(period, settings.period_convention))
    seen = sorted({quarter_label(end) for end in pd.to_datetime(earlier["period_end"]).dt.date}) if len(earlier) else []
    ctx.files.history_seen.write_text(json.dumps(seen), encoding="utf-8")
    findings, summary = validate_quarter(
        _bieu06_rows(ctx), period=period, dossiers=ctx.files.dossiers,
        several_units=ctx.files.ids_under_several_units,
        total_rows=pd.read_parquet(ctx.files.self_reported_totals),
        earlier=earlier,
        units=ctx.units_in_force, field_codes=[f["code"] for f in settings.fields],
        convention=settings.period_convention, bases=ctx.landed()["bases"],
        coverage={s.id: s.coverage for s in settings.sources},
        tolerance_abs=float(settings.reconciliation.get("tolerance_abs", 0)),
        tolerance_rel=float(settings.reconciliation.get("tolerance_rel", 0)),
        published=published_figures(ctx.warehouse_url, period), outliers=settings.outliers,
        finished_without_date=settings.rule_set.finished_without_date, handed_over=_fields_taken_over(ctx),
        results_path=ctx.files.gx_results, docs_dir=ctx.files.gx_data_docs, callback_dir=ctx.run_dir)
    _write_findings(ctx.files.findings_validate, findings)
    return {**summary, "findings": _count_by_severity(findings)}


def reconcile(ctx: RunContext) -> dict:
    from transforms.reconcile import reconcile as decide
    from transforms.rollup import rollup
    from validations.reconciled_figures import audit_reconciled

    findings = _read_findings(ctx.files.findings_canonicalize, ctx.files.findings_validate)
    sources = ctx.landed()
    empty = [source for source, info in sources["landed"].items() if not info["rows"]]
    reconciled, decisions, new = decide(_bieu06_rows(ctx), ctx.units_in_force, findings, ctx.settings,
                                        ctx.period, sources["missing"], sources["bases"], empty)
    reconciled.to_parquet(ctx.files.reconciled, index=False)
    decisions.to_parquet(ctx.files.unit_status, index=False)
    new += reform_handover_findings(ctx, reconciled, decisions)
    _write_findings(ctx.files.findings_reconcile, new)
    # national scope: each unit rolls up to its own province (for one province that is the configured one)
    parent = None if ctx.settings.national else ctx.settings.province_code
    rolled = rollup(ctx.files.dossiers, decisions, reconciled, ctx.units_in_force, parent,
                    ctx.period, ctx.settings.rule_set)
    rolled.to_parquet(ctx.files.rollup, index=False)
    audit = audit_reconciled(reconciled, period=ctx.period, units_in_force=ctx.units_in_force["unit_code"],
                             field_codes=[f["code"] for f in ctx.settings.fields],
                             convention=ctx.settings.period_convention,
                             results_path=ctx.files.gx_results_reconciled)
    return {**audit, "units": len(decisions), "by_status": decisions["quality_status"].value_counts().to_dict(),
            "rollup_rows": len(rolled)}


PUBLISHED_STATUSES = ("ok", "warning")


def _fields_taken_over(ctx: RunContext) -> set[tuple[str, str]]:
    """In the first quarter after the reform: (department, field) for each field of the abolished districts
    a department took over (`reform.district_fields_to_departments`); its carried over includes the
    districts' pending dossiers, which the hand-over check compares, not its own continuity."""
    if not ctx.first_after_reform:
        return set()
    return {(department, field) for field, department in ctx.settings.district_fields_to_departments.items()}


def reform_handover_findings(ctx: RunContext, reconciled: pd.DataFrame, decisions: pd.DataFrame) -> list[Finding]:
    """In the first quarter after the reform of the units: the hand-over of pending dossiers from the
    old units (the previous quarter in the warehouse) to their successors balances, per successor group
    and field (validations/reform_handover.py); nothing in any other quarter."""
    from tthc.units import successors, units_in_force
    from validations.reform_handover import handover_findings, successor_groups
    from warehouse.history import published_units, reconciled_figures

    if not ctx.first_after_reform:
        return []
    reform, previous = ctx.reform_date, ctx.period.previous(ctx.settings.period_convention)
    before = reconciled_figures(ctx.warehouse_url, previous)
    if before.empty:
        return [finding("continuity.unchecked",
                        f"Không đối chiếu được bàn giao hồ sơ khi sắp xếp đơn vị hành chính ({reform:%d/%m/%Y}): "
                        f"chưa có số liệu kỳ {previous.label} trong kho", ctx.period.start, ctx.period.end,
                        columns=["carried_over"], location=f"core.bieu06_reconciled {previous.label}")]
    units_before, units_after = units_in_force(ctx.units, previous.end), ctx.units_in_force
    groups = successor_groups(successors(_conversion(ctx), ctx.units, reform), units_before, units_after,
                              ctx.settings.district_fields_to_departments, [f["code"] for f in ctx.settings.fields])
    names = {**{("old", u): n for u, n in zip(units_before["unit_code"], units_before["unit_name"])},
             **{("new", u): n for u, n in zip(units_after["unit_code"], units_after["unit_name"])}}
    published_after = set(decisions.loc[decisions["quality_status"].isin(PUBLISHED_STATUSES), "unit_code"])
    return handover_findings(groups, before, reconciled, published_units(ctx.warehouse_url, previous), published_after,
                             names, previous, ctx.period, reform)


def load(ctx: RunContext) -> dict:
    from warehouse.db import ParquetRows, WarehouseUnavailable, engine_for, migrate
    from warehouse.load import load_period
    from warehouse.preflight import where

    sources = ctx.landed()
    if not sources["landed"]:
        why = "; ".join(f"{source}: {reason}" for source, reason in sources["missing"].items())
        raise NothingPublished(f"{ctx.period.label}: no source landed ({why}): nothing loaded or published; the "
                               f"warehouse and the published vintages keep their previous state. Findings: "
                               f"{ctx.files.findings_canonicalize}")
    decisions = pd.read_parquet(ctx.files.unit_status)
    findings = pa.concat_tables([pq.read_table(path) for path in ctx.files.findings]).cast(FINDINGS_SCHEMA)
    bieu06 = pa.concat_tables([_with_lineage(pq.read_table(ctx.files.derived), ctx),
                               pq.read_table(ctx.files.self_reported)])
    tables = {
        # streamed from the run's file batch by batch: memory does not grow with the dossiers
        "core.fact_dossier": ParquetRows(ctx.files.dossiers, {"landed_file": _lineage_lookup(ctx)}),
        "core.fact_bieu06": bieu06,
        "core.unit_period_status": decisions.drop(columns=["has_rows"]).assign(history_seen=_history_seen(ctx)),
        "core.bieu06_reconciled": pd.read_parquet(ctx.files.reconciled).drop(columns=["unit_name", "unit_level"]),
        "core.bieu06_rollup": pd.read_parquet(ctx.files.rollup),
        "quality.findings": findings,
        "quality.quarantine": decisions[decisions["quality_status"] == "critical"][["unit_code", "source_id", "reason"]],
        "quality.definition_moves": _definition_moves(ctx),
        "quality.callback": _callback(ctx, findings),
    }
    with _warehouse_errors(ctx, "load"), engine_for(ctx.warehouse_url) as engine:
        migrate(engine)
        if engine.dialect.name == "postgresql":  # before writing anything: the load and the publication can both run
            from warehouse.preflight import missing_privileges

            with engine.connect() as conn:
                missing = missing_privileges(conn)
            if missing:
                raise WarehouseUnavailable(
                    f"{ctx.period.label}: nothing loaded: the warehouse {where(ctx.warehouse_url)} role lacks "
                    + ", ".join(missing) + "; run `tthc warehouse-roles` as its owner and grant tthc_loader to the login")
        fields = pd.DataFrame([{"field_code": f["code"], "field_name": f["name"]} for f in ctx.settings.fields])
        return load_period(engine, ctx.period, ctx.run_id, units=ctx.units, conversion=_conversion(ctx),
                           fields=fields, tables=tables)


# what each warehouse step leaves when its connection is lost or a privilege is refused
AFTERMATH = {
    "load": "The load's swap is one transaction: the warehouse keeps its previous state (or, if the server "
            "committed it before the connection was lost, this run's rows); the published vintages are unchanged. "
            "Rerun the quarter once the warehouse is back",
    "publish": "The publication's transaction is rolled back: the published vintages are unchanged (the publish "
               "views read only each vintage's own tables), while core already holds this run's load. Rerun the "
               "quarter to publish it",
}


@contextmanager
def _warehouse_errors(ctx: RunContext, step: str):
    """A lost connection or a refused privilege during `step` becomes a `WarehouseUnavailable`
    that says what was lost and what the warehouse holds now, instead of a driver traceback
    (or the lock's own error hiding it)."""
    from warehouse.db import WarehouseUnavailable, connection_lost, lacks_privilege
    from warehouse.preflight import unusable

    try:
        yield
    except WarehouseUnavailable:
        raise
    except Exception as exc:
        if not (connection_lost(exc) or lacks_privilege(exc)):
            raise
        cause = unusable(ctx.warehouse_url, exc, f"the {step} of {ctx.period.label}", connected=True)
        raise WarehouseUnavailable(f"{cause} {AFTERMATH[step]}.") from exc


def _history_seen(ctx: RunContext) -> str | None:
    """The earlier quarters validation compared this one with (continuity, outliers), as "2025-Q1, 2025-Q2":
    a unit's flag may differ once more of them are loaded."""
    path = ctx.files.history_seen
    seen = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    return ", ".join(seen) or None


def _callback(ctx: RunContext, findings: pa.Table) -> pd.DataFrame:
    """The call-back list of the run's findings (validations/callback.py), for publish.callback."""
    from tthc.findings import Finding
    from validations.callback import callback_table

    frame = callback_table([Finding.from_row(row) for row in findings.to_pylist()], ctx.units_in_force)
    return frame.assign(period_start=ctx.period.start, period_end=ctx.period.end)


def _definition_moves(ctx: RunContext) -> pd.DataFrame:
    moves = pd.read_parquet(ctx.files.definition_moves)
    for name in ("period_start", "period_end"):
        moves[name] = pd.to_datetime(moves[name]).dt.date
    return moves


def _conversion(ctx: RunContext) -> pd.DataFrame:
    """The official conversion rows that concern the province, corrected by its correction file, with
    the date they took effect."""
    checked = ctx.conversion
    for problem in checked.unreadable + checked.refused:
        log.warning("reference data: %s", problem)
    return _province_rows(ctx, checked.table).assign(effective_from=ctx.reform_date)


def _province_rows(ctx: RunContext, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the conversion (or of its check) that concern the province: every row in a national run."""
    if ctx.settings.national:
        return rows
    codes = set(ctx.units["unit_code"])
    mine = rows[rows["new_code"].isin(codes) | rows["old_code"].isin(codes)]
    return mine[(mine["new_province_code"] == ctx.settings.province_code) |
                mine["old_province_code"].isin(ctx.settings.province.get("codes_before_reform",
                                                                         [ctx.settings.province_code]))]


def across_reform(ctx: RunContext) -> tuple[Callable | None, Callable[[], list[Finding]]]:
    """The records of a quarter as the reform of the units leaves them (docs/reconciliation.md, "Across
    the reform"): what canonicalize passes its records through as it writes them, and the findings of what
    that did, once it is done. After the reform, records still under an old commune's or district's code
    are put on the unit that took its dossiers (tthc.units.successors; a district's in a field given to a
    department on that department; a split commune's on the successor `reform.split_records` names, else
    nowhere), one info finding per source and old code; the old software's copy of a dossier that another
    software carries on at its successor is left out. Before it, a record that the successor's software
    entered at the hand-over is left out: the old unit's software reports it then."""
    from tthc.units import successors, units_in_force
    from transforms.canonicalize import HandedOverLater, SuccessorPlacement

    reform = ctx.reform_date
    to_departments = ctx.settings.district_fields_to_departments
    before = units_in_force(ctx.units, reform - timedelta(days=1))
    districts = set(before.loc[before["level"] == "district", "unit_code"])
    taken = successors(_conversion(ctx), ctx.units, reform)
    if ctx.period.end < reform:
        after = units_in_force(ctx.units, reform)
        new_units = set(after.loc[after["level"] == "commune", "unit_code"]) - set(before["unit_code"])
        targets = {(dept, field) for field, dept in to_departments.items()} | {(unit, "") for unit in new_units}
        leaving = HandedOverLater(datetime.combine(reform, datetime.min.time()), targets)
        return leaving, lambda: [finding(
            "records.handed_over_later",
            f"Nguồn {source_id}: {count} hồ sơ của đơn vị {unit} tiếp nhận trước {reform:%d/%m/%Y} nhưng được nhập "
            f"vào phần mềm từ ngày đó (hồ sơ được bàn giao khi sắp xếp đơn vị hành chính): kỳ {ctx.period.label} "
            "không tính cho đơn vị này, hồ sơ thuộc đơn vị cũ và do phần mềm của đơn vị cũ báo cáo",
            ctx.period.start, ctx.period.end, source_id=source_id, unit_code=unit, observed=str(count),
            location=f"{source_id}: entered_at ≥ {reform}, received_at < {reform}")
            for (source_id, unit), count in sorted(leaving.left.items())]
    if ctx.period.start < reform:
        return None, list
    in_force = ctx.units_in_force
    in_force_codes = set(in_force["unit_code"])
    level = dict(zip(in_force["unit_code"], in_force["level"]))
    split = {old: new for old, new in taken.items() if len(new) > 1 and old not in in_force_codes}
    chosen = {old: new for old, new in ctx.settings.split_records.items() if new in split.get(old, [])}
    refused = [finding(
        "config.split_records",
        f"reform.split_records ({ctx.settings.province_file.name}): {old} → {new} không dùng được: "
        + (f"{old} không phải xã cũ được chia cho nhiều đơn vị theo bảng chuyển đổi" if old not in split else
           f"{new} không phải đơn vị tiếp nhận của {old} (các đơn vị tiếp nhận: {', '.join(split[old])})"),
        ctx.period.start, ctx.period.end, unit_code=old, location=str(ctx.settings.province_file))
        for old, new in sorted(ctx.settings.split_records.items()) if old not in chosen]
    successor_of = {old: new[0] for old, new in taken.items() if len(new) == 1 and old not in in_force_codes} | chosen
    field_successor = {(district, field): dept for district in districts - in_force_codes
                       for field, dept in to_departments.items() if dept in in_force_codes}
    targets = set(successor_of.values()) | set(field_successor.values())
    # a code the reform gave to a new unit while its old commune went into another one
    reused = {old: new[0] for old, new in taken.items()
              if old in in_force_codes and level.get(old) == "commune" and len(new) == 1 and new[0] != old}
    targets |= set(reused.values())
    elsewhere = {(source.id, unit) for source in ctx.settings.sources for unit in targets
                 if source.coverage(unit, level.get(unit, ""), ctx.period) is None}
    placement = SuccessorPlacement(successor_of, field_successor, elsewhere, set(split) - set(chosen), reused,
                                   datetime.combine(reform, datetime.min.time()))
    return placement, lambda: refused + _placement_findings(ctx, placement, before, split, reused, elsewhere, reform)


def _placement_findings(ctx: RunContext, placement, before: pd.DataFrame, split: dict[str, list[str]],
                        reused: dict[str, str], elsewhere: set[tuple[str, str]], reform) -> list[Finding]:
    """What SuccessorPlacement did: one finding per source, old code and successor; one per split code
    whose records could not be placed."""
    in_force = ctx.units_in_force
    placed, unplaced = placement.placed, placement.unplaced
    old_names = dict(zip(before["unit_code"], before["unit_name"]))
    new_names = dict(zip(in_force["unit_code"], in_force["unit_name"]))
    out = []
    for (source_id, old, new), count in sorted(placed.items()):
        head = (f"Nguồn {source_id}: {count} hồ sơ của kỳ {ctx.period.label} còn ghi mã đơn vị cũ {old} "
                f"({old_names.get(old, old)}, trước {reform:%d/%m/%Y}), đơn vị tiếp nhận là {new} "
                f"({new_names.get(new, new)})")
        if old in reused:
            head = (f"Nguồn {source_id}: {count} hồ sơ của kỳ {ctx.period.label} tiếp nhận trước {reform:%d/%m/%Y} "
                    f"ghi mã {old}: từ ngày đó mã này là của {new_names.get(old, old)}, nhưng hồ sơ tiếp nhận trước "
                    f"đó là của {old_names.get(old, old)} (đơn vị cũ), đơn vị tiếp nhận là {new} "
                    f"({new_names.get(new, new)})")
        if (source_id, new) in elsewhere:
            text = (f"{head}, đơn vị này dùng phần mềm khác: đây là bản ghi cũ của hồ sơ đã bàn giao, không tính từ "
                    "nguồn này (phần mềm của đơn vị tiếp nhận báo cáo hồ sơ)")
        else:
            text = f"{head}: đã tính cho đơn vị tiếp nhận theo bảng chuyển đổi"
        out.append(finding("records.old_unit_code", text, ctx.period.start, ctx.period.end, source_id=source_id,
                           unit_code=old, observed=str(count), expected=new, location=f"{source_id}: unit_code {old}"))
    for (source_id, old), count in sorted(unplaced.items()):
        options = ", ".join(f"{u} ({new_names.get(u, u)})" for u in split[old])
        out.append(finding(
            "records.old_unit_split",
            f"Nguồn {source_id}: {count} hồ sơ của kỳ {ctx.period.label} còn ghi mã đơn vị cũ {old} "
            f"({old_names.get(old, old)}), đơn vị đã được chia cho {options}: không xác định được đơn vị tiếp nhận "
            f"nên chưa tính cho đơn vị nào; khai báo đơn vị nhận hồ sơ trong reform.split_records "
            f"({ctx.settings.province_file.name})", ctx.period.start, ctx.period.end, source_id=source_id,
            unit_code=old, observed=str(count), location=f"{source_id}: unit_code {old}"))
    return out


def reference_findings(ctx: RunContext) -> list[Finding]:
    """The official lists checked as they are loaded: the province's conversion rows that do not match
    the pre-reform list, and its corrections applied or refused."""
    from validations.reference_lists import conversion_findings

    checked = ctx.conversion
    return conversion_findings(_province_rows(ctx, checked.mismatches), checked.applied, checked.refused,
                               ctx.period, checked.conversion_file, checked.corrections_file)


def publish(ctx: RunContext) -> dict:
    from publishing.vintage import Publication
    from runner.publication import publish_period
    from warehouse.db import engine_for

    publication = Publication(ctx.settings.province_code, ctx.settings.province["name"],
                              {f["code"]: f["name"] for f in ctx.settings.fields})
    state = ctx.landed()
    failed = state.get("failed", {})
    if failed and ctx.settings.on_source_failure == "refuse":
        raise PublicationRefused(
            f"{ctx.period.label}: no new vintage: reliability.on_source_failure is refuse and "
            + "; ".join(f"{source} failed ({why})" for source, why in sorted(failed.items()))
            + "; the published vintages are unchanged. Rerun when the source is back, or set "
              "on_source_failure: last_good_landing in config/province.yaml to publish on its last good landing")
    landed = state["landed"]
    checksums = {source: ",".join(f["sha256"] for f in info["files"]) for source, info in landed.items()}
    with _warehouse_errors(ctx, "publish"), engine_for(ctx.warehouse_url) as engine:
        result = publish_period(engine, ctx.period, ctx.run_id, ctx.var / "publish", sources=checksums, note=ctx.note,
                                publication=publication)
    if result["vintage"] is not None:
        result["analyst_copy"] = _refresh_analyst_copy(ctx)
    ctx.files.published.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if result["vintage"] is None:
        statuses = pd.read_parquet(ctx.files.unit_status)["quality_status"].value_counts().to_dict()
        raise NothingPublished(
            f"{ctx.period.label}: nothing to publish: no unit has figures that may be published ("
            + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            + "; see quality.findings); no vintage made, the published ones are unchanged")
    return result


def _refresh_analyst_copy(ctx: RunContext) -> str | None:
    """The embedded warehouse's copy for analysts (warehouse/analyst_copy.py), after the publication
    it shows; a copy that cannot be written leaves the previous one and is said, the publication stands."""
    from warehouse.analyst_copy import analyst_copy_path, refresh_analyst_copy

    if not ctx.warehouse_url.startswith("duckdb:///"):
        return None
    try:
        return str(refresh_analyst_copy(Path(ctx.warehouse_url.removeprefix("duckdb:///")), analyst_copy_path(ctx.var)))
    except (duckdb.Error, OSError) as exc:
        log.warning("the analysts' copy of the warehouse was not refreshed (the previous one stays): %s", exc)
        return None


def summary(ctx: RunContext) -> dict:
    """What a person wants to know after a run: units, dossiers, findings, what was published."""
    findings = pa.concat_tables([pq.read_table(path) for path in ctx.files.findings if path.exists()]).to_pandas()
    decisions = pd.read_parquet(ctx.files.unit_status)
    published = json.loads(ctx.files.published.read_text()) if ctx.files.published.exists() else None
    return {
        "period": ctx.period.as_dict(),
        "run_id": ctx.run_id,
        "units": {"expected": len(decisions), **decisions["quality_status"].value_counts().to_dict()},
        "dossiers": pq.read_metadata(ctx.files.dossiers).num_rows,
        "sources": {**{source: {"rows": info["rows"]} for source, info in ctx.landed()["landed"].items()},
                    **{source: {"missing": why} for source, why in ctx.landed()["missing"].items()}},
        "stale_sources": ctx.landed().get("stale", {}),
        # sources stopped by the run's time budget (reliability.run_budget_seconds), with why
        "over_budget": {source: why for source, why in ctx.landed().get("failed", {}).items()
                        if why.startswith(f"{OVER_BUDGET}:")},
        "findings": findings["severity"].value_counts().to_dict() if len(findings) else {},
        "published": published,
        "warehouse": redact_url(ctx.warehouse_url),
        "run_dir": str(ctx.run_dir),
        "landing": str(period_landing(ctx.var, ctx.period)),
    }


def sources_to_extract(ctx: RunContext) -> list[str]:
    """The DAG's first task: the sources to extract, once the working folder can be written and
    the warehouse can take the load and the publication (else `VarDirUnusable` or
    `WarehouseUnavailable`, before any extraction), as `run` checks them."""
    from warehouse.preflight import check_warehouse

    check_var_dir(ctx.var)
    check_warehouse(ctx.warehouse_url)
    return source_ids(ctx.settings)


def run(ctx: RunContext) -> dict:
    """Every stage in order without a scheduler; a source that fails does not stop the others.
    One run per period at a time: a second one raises `tthc.locks.RunInProgress` at once
    (var/locks/<period>.lock); load and publish also wait on the warehouse's period lock. A
    working folder that cannot be written (`VarDirUnusable`) or a warehouse that cannot take the
    load and the publication (`warehouse.db.WarehouseUnavailable`) stop it before extraction."""
    from tthc.locks import run_lock
    from warehouse.preflight import check_warehouse

    check_var_dir(ctx.var)
    with run_lock(ctx.var, ctx.period.label, ctx.run_id):
        check_warehouse(ctx.warehouse_url)  # reachable, a warehouse, migrated, privileged: before minutes of extraction
        budget = ctx.settings.run_budget_seconds
        started = time.monotonic()
        deadline = None if budget is None else started + budget
        for source_id in source_ids(ctx.settings):
            try:
                extract(ctx, source_id, deadline)
            except Exception as exc:  # noqa: BLE001 - recorded in the landing area, reported as missing
                log.error("source %s failed: %s", source_id, exc)
        if budget is not None:
            log.info("%s: extraction took %.1fs of the run's %gs budget", ctx.period.label,
                     time.monotonic() - started, budget)
        for stage in STAGES:
            stage(ctx)
        return summary(ctx)


# The quarter after extraction, in order: what `tthc run`, the DAG's tasks and the bench run.
STAGES = (canonicalize, derive, validate, reconcile, load, publish)


def _landed_files(ctx: RunContext) -> dict[str, str]:
    """Each source's landed file, as a path under var/ (the lineage kept with its rows)."""
    return {source: landed_path(ctx.var, ctx.period, source, info["files"]).relative_to(ctx.var).as_posix()
            for source, info in ctx.landed()["landed"].items()}


def _lineage_lookup(ctx: RunContext):
    from warehouse.db import Lookup

    return Lookup("source_id", tuple(_landed_files(ctx).items()))


def _with_lineage(table: pa.Table, ctx: RunContext) -> pa.Table:
    """Names the landed file each record-based row came from."""
    column = _lineage_lookup(ctx).column(table)  # a source without a landed file gives null
    if "landed_file" in table.column_names:
        return table.set_column(table.column_names.index("landed_file"), "landed_file", column)
    return table.append_column("landed_file", column)


def _write_findings(path: Path, findings: list[Finding]) -> None:
    pq.write_table(findings_table(findings), path)


def _read_findings(*paths: Path) -> list[Finding]:
    findings = []
    for path in paths:
        for row in pq.read_table(path).to_pylist():
            row["columns"] = json.loads(row["columns"]) if row["columns"] else []
            row["suggested_fix"] = json.loads(row["suggested_fix"]) if row["suggested_fix"] else None
            findings.append(Finding(**row))
    return findings


def _count_by_severity(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts
