"""`tthc`: run the quarterly pipeline, make the sample sources, run the DAG or all of Airflow locally."""
from __future__ import annotations

import argparse
import os
import json
import logging
import sys

from tthc.config import ConfigError, default_warehouse_url, var_dir
from tthc.connections import redact_url
from tthc.periods import PeriodError
from tthc.units import ReferenceDataError
from warehouse.db import WarehouseBusy, WarehouseUnavailable


def _print_summary(summary: dict) -> None:
    period = summary["period"]
    units = summary["units"]
    published = summary.get("published") or {}
    print(f"\nQuarter {period['label']} ({period['start']} – {period['end']}), run {summary['run_id']}")
    print(f"  units: {units.get('expected', 0)} expected; " + ", ".join(
        f"{k} {v}" for k, v in sorted(units.items()) if k != "expected"))
    print("  sources: " + "; ".join(
        f"{source} {info['rows']:,} rows" if "rows" in info else f"{source} missing ({info['missing']})"
        for source, info in summary.get("sources", {}).items()))
    for source, why in (summary.get("over_budget") or {}).items():
        kept = " (its last good landing used)" if source in (summary.get("stale_sources") or {}) else ""
        print(f"  over the run's time budget: {source}{kept}: {why}")
    print(f"  dossiers: {summary['dossiers']:,}")
    print("  findings: " + (", ".join(f"{k} {v}" for k, v in sorted(summary["findings"].items())) or "none"))
    if published and published.get("vintage") is None:
        print("  published: nothing (no unit has figures that may be published; no vintage made)")
    elif published:
        state = "new vintage" if published.get("new_vintage") else "unchanged, same vintage"
        print(f"  published: {published['units']} units, vintage {published['vintage']} ({state})")
        print(f"\nOutputs\n  warehouse:  {summary['warehouse']}  (table publish.bieu06_by_unit)")
        print(f"  published:  {published['folder']}")
    print(f"  landing:    {summary['landing']}")
    print(f"  validation: {summary['run_dir']}  (gx_results.json, findings_*.parquet)")


def cmd_run(args) -> int:
    from runner import pipeline
    from runner.local_sources import ensure_sample, sample_connections

    from tthc.locks import RunInProgress

    ctx = pipeline.make_context(args.period, warehouse_url=args.warehouse, note=args.reason,
                                 full_extract=args.full_extract)
    try:
        pipeline.check_var_dir(ctx.var)  # before the sample is written there
        if args.sample:
            ensure_sample(args.seed, args.scale)
            with sample_connections():
                summary = pipeline.run(ctx)
        else:
            summary = pipeline.run(ctx)
    except RunInProgress as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    except pipeline.VarDirUnusable as exc:
        print(f"working folder unusable: {exc}", file=sys.stderr)
        return 7
    except pipeline.NothingPublished as exc:
        try:
            _print_summary(pipeline.summary(ctx))
        except FileNotFoundError:  # a stage before reconcile did not run
            pass
        print(f"\nnothing published: {exc}", file=sys.stderr)
        return 4
    _print_summary(summary)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return 0


def cmd_sample(args) -> int:
    from runner.local_sources import ensure_sample, sample_dir
    from simulator.generate import generate

    if args.force:
        info = generate(sample_dir(), seed=args.seed, scale=args.scale)
        print(json.dumps(info, ensure_ascii=False, indent=1, default=str))
    else:
        ensure_sample(args.seed, args.scale)
    print(f"sample sources in {sample_dir()}")
    return 0


def cmd_airflow_run(args) -> int:
    """Run the DAG for one quarter through Airflow (`airflow dags test`) on the sample sources."""
    from runner import pipeline
    from runner.airflow_local import dags_test
    from runner.local_sources import ensure_sample, sample_connections

    ensure_sample(args.seed, args.scale)
    with sample_connections():
        code = dags_test(args.period)
    if code != 0:
        print(f"the DAG run failed (exit {code}); see the task logs above", file=sys.stderr)
        return code
    ctx = pipeline.make_context(args.period)
    latest = _latest_run_dir(ctx)
    if latest is None:
        print("the DAG ran but left no run folder", file=sys.stderr)
        return 1
    ctx.run_id = latest
    _print_summary(pipeline.summary(ctx))
    return 0


def cmd_airflow(args) -> int:
    """Airflow with its UI on this machine, on the sample sources, until Ctrl-C."""
    from runner.airflow_local import serve
    from runner.local_sources import ensure_sample, sample_connections

    ensure_sample(args.seed, args.scale)
    with sample_connections():
        return serve(args.port, example_period=args.period)


def cmd_warehouse_roles(args) -> int:
    from warehouse.db import engine_for, migrate
    from warehouse.roles import setup_roles

    with engine_for(args.warehouse or default_warehouse_url()) as engine:
        migrate(engine)
        setup_roles(engine, args.loader, args.analyst)
    print(f"roles ready: {args.loader} writes staging, core, quality, publish; {args.analyst} reads publish and quality")
    return 0


def cmd_validate(args) -> int:
    """Biểu 06 workbooks or canonical CSV validated offline: 0 no critical finding, 1 some, 2 a file unreadable."""
    from tthc.config import load_settings
    from runner.validate_files import main as validate_offline

    return validate_offline(args.files, args.format, load_settings(), args.max_findings_per_check,
                            province=args.province, convention=args.period_convention)


def cmd_bench(args) -> int:
    """The core pipeline on N national synthetic dossiers against DuckDB alone (runner/bench.py)."""
    from pathlib import Path

    from runner.bench import bench, format_result

    result = bench(args.records, seed=args.seed, warehouse=args.warehouse,
                   memory_limit=args.memory_limit or None, threads=args.threads)
    print(format_result(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        print(f"written to {args.json}")
    return 0


def cmd_explain(args) -> int:
    from runner.explain import NoRunYet, as_text, latest_dossiers, sources_to_explain
    from tthc.config import load_settings
    from tthc.rules import rule_set
    from transforms.explain import explain

    settings = load_settings()
    period = settings.period(args.period)
    try:
        against = rule_set(args.against, "--against")
        sources = sources_to_explain(settings, against, args.source)
        dossiers = latest_dossiers(period)
    except (ValueError, NoRunYet) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    moves = explain(dossiers, period, settings.rule_set, against, sources)
    if args.unit:
        moves = moves[moves["unit_code"].isin(args.unit)]
    if args.format == "csv":
        from tthc.cells import inert_frame

        sys.stdout.write(inert_frame(moves).to_csv(index=False))
    elif args.format == "json":
        print(moves.to_json(orient="records", force_ascii=False, date_format="iso", indent=1))
    else:
        from tthc.units import units_for_province, units_in_force

        units = units_in_force(units_for_province(settings), period.end)
        sys.stdout.write(as_text(moves, period, settings.rule_set, against,
                                 dict(zip(units["unit_code"], units["unit_name"]))))
    return 0


def cmd_intake_serve(args) -> int:
    """The units' Biểu 06 intake (intake/) on host:port, until Ctrl-C."""
    import uvicorn

    from intake.app import create_app
    from tthc.config import load_settings

    app = create_app(load_settings())
    print(f"intake on http://{args.host}:{args.port}/ (units' links: tthc intake token; the board: "
          "tthc intake token --province)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=args.behind_proxy,
                forwarded_allow_ips="*" if args.behind_proxy else None)
    return 0


def cmd_intake_token(args) -> int:
    """Links for units (one per unit and period) or the province's board; each token printed once."""
    from intake.store import Store
    from tthc.config import load_settings
    from tthc.units import units_for_province, units_in_force

    settings = load_settings()
    store = Store(var_dir() / "intake")
    base = args.base_url.rstrip("/")
    if args.province:
        link, token = store.issue("province", settings.province_code, args.period)
        print(f"link {link.id}\tboard\t{base}/tinh/{token}")
        return 0
    if not args.period:
        print("refused: --period is needed for units' links", file=sys.stderr)
        return 2
    period = settings.period(args.period)
    units = units_in_force(units_for_province(settings), period.end)
    if args.level:
        wanted = units[units["level"] == args.level]
    else:
        wanted = units[units["unit_code"].isin(args.unit or [])]
    unknown = sorted(set(args.unit or []) - set(units["unit_code"]))
    if unknown or wanted.empty:
        print(f"refused: no unit in force in {period.label} with code {', '.join(unknown) or '(none given)'}: give "
              "--unit CODE (repeatable) or --level commune", file=sys.stderr)
        return 2
    for unit in wanted.to_dict("records"):
        link, token = store.issue("unit", unit["unit_code"], period.label)
        print(f"link {link.id}\t{unit['unit_code']}\t{unit['unit_name']}\t{base}/u/{token}")
    return 0


def cmd_intake_revoke(args) -> int:
    from intake.store import Store

    if not Store(var_dir() / "intake").revoke(args.link):
        print(f"refused: no link {args.link} in force", file=sys.stderr)
        return 2
    print(f"link {args.link} revoked")
    return 0


def cmd_intake_links(args) -> int:
    from intake.store import Store

    for row in Store(var_dir() / "intake").links(args.period):
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "in force"
        print(f"link {row['id']}\t{row['role']}\t{row['unit_code']}\t{row['period'] or '-'}\t{row['created_at']}\t{state}")
    return 0


def _latest_run_dir(ctx) -> str | None:
    folder = var_dir() / "runs" / ctx.period.label
    runs = sorted((p for p in folder.glob("*") if (p / "published.json").exists()), key=lambda p: p.stat().st_mtime)
    return runs[-1].name if runs else None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="tthc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run every stage for one quarter, without a scheduler",
                         epilog="exit status: 0 published (a source down or empty is a finding, not a failure), "
                                "2 refused (period, configuration, reference data), 3 another run of the quarter "
                                "holds its lock, 4 nothing published (no source landed, or no unit has figures that "
                                "may be published), 5 the embedded warehouse file is held by another process, "
                                "6 the warehouse cannot be used (unreachable, refused login, not a DuckDB file, a "
                                "missing privilege, the connection lost while loading), 7 the working folder "
                                "(TTHC_VAR_DIR) cannot be written")
    run.add_argument("--period", required=True, help="quarter label, e.g. 2024-Q2")
    run.add_argument("--warehouse", default=None,
                     help=f"SQLAlchemy URL (default {redact_url(default_warehouse_url())})")
    run.add_argument("--sample", action="store_true", help="serve the local sample sources for this run")
    run.add_argument("--json", action="store_true", help="also print the summary as JSON")
    run.add_argument("--full-extract", action="store_true",
                     help="land every source's whole period window, ignoring incremental watermarks (period close)")
    run.add_argument("--reason", default=None,
                     help="why this rerun, kept with a new vintage (e.g. 'late correction from Xã Bảo Lâm')")
    run.set_defaults(func=cmd_run)

    sample = sub.add_parser("sample", help="write the sample sources under var/sample")
    sample.add_argument("--force", action="store_true", help="regenerate even if present")
    sample.set_defaults(func=cmd_sample)

    airflow_run = sub.add_parser("airflow-run", help="run the DAG through Airflow on the sample sources")
    airflow_run.add_argument("--period", required=True)
    airflow_run.set_defaults(func=cmd_airflow_run)

    airflow = sub.add_parser("airflow", help="Airflow with its UI on 127.0.0.1 on the sample sources, until Ctrl-C")
    airflow.add_argument("--port", type=int, default=8080, help="the UI's and REST API's port (default 8080)")
    airflow.add_argument("--period", default="2025-Q2", help="the quarter named in the trigger example")
    airflow.set_defaults(func=cmd_airflow)

    roles = sub.add_parser("warehouse-roles", help="create the loader and analyst roles of a PostgreSQL warehouse")
    roles.add_argument("--warehouse", default=None, help="postgresql://… (default TTHC_WAREHOUSE_URL)")
    roles.add_argument("--loader", default="tthc_loader")
    roles.add_argument("--analyst", default="tthc_analyst")
    roles.set_defaults(func=cmd_warehouse_roles)

    validate = sub.add_parser("validate", help="validate Biểu 06 workbooks (.xlsx) or canonical CSV offline")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument("--max-findings-per-check", type=int, default=None, metavar="N",
                          help="list at most N findings of each check, count the others (default 500)")
    validate.add_argument("--province", metavar="CODE",
                          help="check unit codes against this province of the reference data ('all': every "
                               "province) instead of the configured one")
    validate.add_argument("--period-convention", choices=("calendar_quarter", "decree_09_2019", "any"),
                          help="the cut-off convention of the files' periods (default: the configured province's); "
                               "months, quarters, half-years and years are accepted")
    validate.set_defaults(func=cmd_validate)

    explain = sub.add_parser("explain", help="why a vendor's Biểu 06 differs from the province's, dossier by dossier",
                             epilog="reads the canonical dossiers of the quarter's latest run; exit status 2 when "
                                    "there is none or an argument is wrong")
    explain.add_argument("--period", required=True, help="quarter label, e.g. 2025-Q2")
    explain.add_argument("--against", required=True, help="a rule set: tandan, opencps or province")
    explain.add_argument("--source", action="append", default=None,
                         help="only this source's dossiers (repeatable; default: the sources read with the "
                              "vendor's preset, else every source)")
    explain.add_argument("--unit", action="append", default=None, help="only this unit code (repeatable)")
    explain.add_argument("--format", choices=("text", "csv", "json"), default="text")
    explain.set_defaults(func=cmd_explain)

    bench = sub.add_parser("bench", help="national-scale benchmark: core stages on N synthetic dossiers vs DuckDB alone")
    bench.add_argument("--records", type=int, required=True, help="synthetic dossier records to land")
    bench.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    bench.add_argument("--seed", type=int, default=2025)
    bench.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: a fresh DuckDB file under var/bench)")
    bench.add_argument("--memory-limit", default="1500MB", help="DuckDB memory_limit of every connection ('' for none)")
    bench.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: every core)")
    bench.set_defaults(func=cmd_bench)

    intake = sub.add_parser("intake", help="the units' Biểu 06 intake: serve it, make and revoke links")
    intake_sub = intake.add_subparsers(dest="intake_command", required=True)
    serve = intake_sub.add_parser("serve", help="serve the intake's pages until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--behind-proxy", action="store_true", help="trust X-Forwarded-* (behind the deployment's proxy)")
    serve.set_defaults(func=cmd_intake_serve)
    token = intake_sub.add_parser("token", help="make units' links for a period (or the province's board link); "
                                                "each token is printed once and stored hashed")
    token.add_argument("--period", default=None, help="quarter label, e.g. 2025-Q2")
    token.add_argument("--unit", action="append", default=None, help="unit code (repeatable)")
    token.add_argument("--level", choices=("commune", "district", "department"), default=None,
                       help="every unit of this level in force in the period")
    token.add_argument("--province", action="store_true", help="the board's link (every period, or --period only)")
    token.add_argument("--base-url", default=os.environ.get("TTHC_INTAKE_BASE_URL", "http://127.0.0.1:8090"),
                       help="the intake's address as units reach it (default TTHC_INTAKE_BASE_URL)")
    token.set_defaults(func=cmd_intake_token)
    revoke = intake_sub.add_parser("revoke", help="revoke a link by its number")
    revoke.add_argument("link", type=int)
    revoke.set_defaults(func=cmd_intake_revoke)
    links = intake_sub.add_parser("links", help="list the links (numbers, units, periods; never the tokens)")
    links.add_argument("--period", default=None)
    links.set_defaults(func=cmd_intake_links)

    for p in (run, sample, airflow_run, airflow):
        p.add_argument("--seed", type=int, default=2024)
        p.add_argument("--scale", type=float, default=1.0, help="1.0 ≈ 150,000 dossiers a quarter")

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except PeriodError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except WarehouseBusy as exc:
        print(f"warehouse busy: {exc}", file=sys.stderr)
        return 5
    except WarehouseUnavailable as exc:
        print(f"warehouse unusable: {exc}", file=sys.stderr)
        return 6
    except ReferenceDataError as exc:
        print(f"reference data error: {exc} (TTHC_REFERENCE_DATA or reference_data in the province file "
              "names the folder of the official unit lists)", file=sys.stderr)
        return 2


def entry_point() -> None:
    """Console entry: exits without interpreter teardown, where DuckDB's bindings would print a
    spurious "leaked objects" report once GX and duckdb-engine were both loaded."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
