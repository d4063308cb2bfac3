"""Roll-up of published unit figures to districts (before the reform) and the province, with
no dossier counted twice.

An inter-level ("liên thông") dossier passes through several units, and each may count it in
its own figures. Where the figures come from records, the roll-up derives them again from the
dossiers of all member units, keeping each dossier once (at the highest level that handled
it). Canonical dossiers hold one record per dossier and source already (their file says so,
`tthc.model.has_unique_dossier_key`): they skip that step, and `duplicates_removed` is 0.
Self-reported figures carry no dossier ids: they are added as they are.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tthc import duck
from tthc.model import has_unique_dossier_key
from tthc.form import BESIDE_FORM_FIGURES, FACT_FIGURES, PUBLISHED_STATUSES
from tthc.periods import Period
from tthc.rules import PROVINCE, RuleSet
from transforms.derive import derivation_params, derivation_sql

LEVEL_RANK = {"commune": 1, "district": 2, "department": 3}
ROLLUP_COLUMNS = ["parent_code", "parent_level", "field_code", *FACT_FIGURES, "units_included", "units_not_published",
                  "duplicates_removed"]


def memberships(units: pd.DataFrame, province_code: str | None) -> pd.DataFrame:
    """(parent, member) pairs: a district and its communes and itself; the province and every unit.
    With `province_code` None (national scope) each unit's parent is its own `province_code`."""
    reporting = units[units["level"].isin(LEVEL_RANK)]
    province = reporting.assign(parent_code=province_code if province_code is not None else reporting["province_code"],
                                parent_level="province")
    districts = reporting[reporting["level"] == "district"]
    in_district = reporting[(reporting["level"] == "commune") & reporting["parent_code"].isin(districts["unit_code"])]
    district_rows = pd.concat([
        in_district.assign(parent_code=in_district["parent_code"], parent_level="district"),
        districts.assign(parent_code=districts["unit_code"], parent_level="district"),
    ])
    pairs = pd.concat([province, district_rows])[["parent_code", "parent_level", "unit_code", "level"]]
    return pairs.rename(columns={"level": "unit_level"}).reset_index(drop=True)


def rollup(dossiers_path: Path, unit_status: pd.DataFrame, reconciled: pd.DataFrame, units: pd.DataFrame,
           province_code: str | None, period: Period, rules: RuleSet = PROVINCE) -> pd.DataFrame:
    members = memberships(units, province_code).merge(
        unit_status[["unit_code", "source_id", "basis", "quality_status"]], on="unit_code", how="left")
    published = members["quality_status"].isin(PUBLISHED_STATUSES)
    counts = members.assign(published=published).groupby(["parent_code", "parent_level"]).agg(
        units_included=("published", "sum"), units_total=("published", "size")).reset_index()
    counts["units_not_published"] = counts["units_total"] - counts["units_included"]

    record_members = members[published & (members["basis"] == "records")]
    con = duck.connect()
    try:
        con.register("members", pa.Table.from_pandas(
            record_members.assign(level_rank=record_members["unit_level"].map(LEVEL_RANK)), preserve_index=False))
        con.read_parquet(str(dossiers_path)).create_view("all_dossiers")
        con.execute("""
            CREATE TEMP VIEW member_dossiers AS
            SELECT m.parent_code, m.parent_level, m.level_rank, d.*
            FROM all_dossiers d JOIN members m ON m.unit_code = d.unit_code AND m.source_id = d.source_id
        """).fetchall()
        if has_unique_dossier_key(pq.read_schema(dossiers_path)):
            # one record per dossier already (canonical dossiers): none can repeat within a parent
            con.execute("""
                CREATE TEMP VIEW dossiers AS
                SELECT * EXCLUDE (unit_code, parent_level, level_rank), parent_code || '|' || parent_level AS unit_code
                FROM member_dossiers
            """).fetchall()
            duplicates = pd.DataFrame({"parent_code": pd.Series(dtype=str), "parent_level": pd.Series(dtype=str),
                                       "duplicates_removed": pd.Series(dtype="int64")})
        else:
            duplicates = _kept_once(con)
        from_records = con.sql(derivation_sql(), params=derivation_params(period, rules)).df()
    finally:
        con.close()
    # no record rows (no records source landed, or none won a published unit): nothing to split
    parents = from_records["unit_code"].str.split("|", n=1, expand=True) if len(from_records) else None
    from_records["parent_code"] = parents[0] if parents is not None else pd.Series(dtype=str)
    from_records["parent_level"] = parents[1] if parents is not None else pd.Series(dtype=str)

    self_reported_units = members[published & (members["basis"] == "self_reported")]
    from_reports = reconciled.merge(self_reported_units[["parent_code", "parent_level", "unit_code"]], on="unit_code")
    # figures beside the form come from records only: a frame of self-reported rows may lack them
    from_reports = from_reports.assign(**{f: pd.NA for f in BESIDE_FORM_FIGURES if f not in from_reports})
    parts = [frame[["parent_code", "parent_level", "field_code", *FACT_FIGURES]] for frame in (from_records, from_reports)
             if len(frame)]
    if not parts:
        return pd.DataFrame(columns=ROLLUP_COLUMNS)
    combined = pd.concat(parts)
    for f in FACT_FIGURES:
        combined[f] = combined[f].astype("Int64")
    keys = ["parent_code", "parent_level", "field_code"]
    summed = combined.groupby(keys, as_index=False)[list(FACT_FIGURES)].sum(min_count=1)
    # a figure beside the form only units with records give: a parent's is withheld where a member lacks it
    incomplete = combined[keys].assign(**{f: combined[f].isna() for f in BESIDE_FORM_FIGURES}) \
        .groupby(keys, as_index=False)[list(BESIDE_FORM_FIGURES)].any()
    summed = summed.merge(incomplete, on=keys, suffixes=("", "_incomplete"))
    for f in BESIDE_FORM_FIGURES:
        summed[f] = summed[f].mask(summed.pop(f"{f}_incomplete"))
    summed = summed.merge(counts[["parent_code", "parent_level", "units_included", "units_not_published"]],
                          on=["parent_code", "parent_level"], how="left")
    summed = summed.merge(duplicates, on=["parent_code", "parent_level"], how="left")
    summed["duplicates_removed"] = summed["duplicates_removed"].fillna(0).astype("int64")
    return summed[ROLLUP_COLUMNS].sort_values(["parent_level", "parent_code", "field_code"]).reset_index(drop=True)


def _kept_once(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """View `dossiers`: each dossier once per parent, at the highest level that handled it, then
    its latest update. Only the keys that repeat within a parent (few) go through the window;
    every other record streams straight into the derivation. Returns the records dropped per
    parent."""
    con.execute("""
        CREATE TEMP TABLE repeated AS
        SELECT parent_code, parent_level, source_id, dossier_id, count(*) AS n
        FROM member_dossiers GROUP BY ALL HAVING count(*) > 1
    """).fetchall()
    con.execute("""
        CREATE TEMP VIEW dossiers AS
        SELECT * EXCLUDE (unit_code, parent_level, level_rank), parent_code || '|' || parent_level AS unit_code
        FROM (
            SELECT md.* FROM member_dossiers md
            ANTI JOIN repeated r USING (parent_code, parent_level, source_id, dossier_id)
            UNION ALL BY NAME
            SELECT * FROM (
                SELECT md.* FROM member_dossiers md
                SEMI JOIN repeated r USING (parent_code, parent_level, source_id, dossier_id))
            QUALIFY row_number() OVER (PARTITION BY parent_code, parent_level, source_id, dossier_id
                                       ORDER BY level_rank DESC, updated_at DESC NULLS LAST, unit_code) = 1)
    """).fetchall()
    return con.sql("""
        SELECT parent_code, parent_level, sum(n - 1)::BIGINT AS duplicates_removed FROM repeated GROUP BY ALL
    """).df()
