"""Why a vendor's Biểu 06 differs from the province's, dossier by dossier (docs/canonical-model.md,
"Explaining a vendor's figures").

The same dossiers are classified under the province's rule set, then with the rules on which
the other rule set differs switched one at a time, in the order of tthc.rules.RULES. A dossier
that changes columns at a step is moved by that step's rule. The moves of all steps add up, for
every unit and figure, to exactly the difference between the two figures.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tthc import duck
from tthc.form import FACT_FIGURES
from tthc.periods import Period
from tthc.rules import RULES, RuleSet
from transforms.derive import MEMBERSHIP, classification_params, classification_sql

EXAMPLES = 5
MOVE_COLUMNS = ["period_start", "period_end", "rule_set", "against", "unit_code", "figure", "province_value",
                "against_value", "rule", "rule_label", "dossiers_in", "dossiers_out", "example_dossiers"]

MEMBERS_SQL = ", ".join(f"coalesce({test}, false)::INTEGER AS {name}" for name, test in MEMBERSHIP.items())
CHANGES_SQL = ", ".join(f"coalesce(b.{name}, 0) - coalesce(a.{name}, 0) AS {name}" for name in MEMBERSHIP)
FIGURE_LIST_SQL = ", ".join(MEMBERSHIP)
CLASSIFIED_SQL = classification_sql()
SUMS_SQL = ", ".join(f"sum({name})::BIGINT AS {name}" for name in MEMBERSHIP)


def rule_path(province: RuleSet, against: RuleSet) -> list[tuple[str, RuleSet]]:
    """(rule switched, rule set after the switch) from the province's rule set to `against`."""
    steps, current = [], province
    for name in province.differences(against):
        current = current.with_rule(name, getattr(against, name))
        steps.append((name, current))
    return steps


def explain(dossiers_path: Path, period: Period, province: RuleSet, against: RuleSet,
            sources: list[str] | None = None) -> pd.DataFrame:
    """One row per unit, figure and rule that moves dossiers into or out of the figure, with both
    figures and example dossier ids (MOVE_COLUMNS); `sources` limits the dossiers to those sources."""
    con = duck.connect()
    try:
        con.execute("CREATE TEMP TABLE dossiers AS SELECT * FROM read_parquet($path) "
                    "WHERE $all_sources OR list_contains($sources, source_id)",
                    {"path": str(dossiers_path), "all_sources": sources is None, "sources": list(sources or [])})
        con.execute(f"CREATE TEMP TABLE states AS SELECT 0 AS step, source_id, dossier_id, unit_code, {MEMBERS_SQL} "
                    f"FROM ({CLASSIFIED_SQL}) WHERE false", classification_params(period, province))
        path = [("", province), *rule_path(province, against)]
        for step, (_, rules) in enumerate(path):
            con.execute(f"INSERT INTO states SELECT $step, source_id, dossier_id, unit_code, {MEMBERS_SQL} "
                        f"FROM ({CLASSIFIED_SQL})", {**classification_params(period, rules), "step": step})
        moves = []
        for step, (rule, _) in enumerate(path[1:], start=1):
            frame = con.execute(f"""
                WITH changed AS (
                    SELECT coalesce(a.unit_code, b.unit_code) AS unit_code,
                           coalesce(a.dossier_id, b.dossier_id) AS dossier_id, {CHANGES_SQL}
                    FROM (SELECT * FROM states WHERE step = $step - 1) a
                    FULL OUTER JOIN (SELECT * FROM states WHERE step = $step) b USING (source_id, dossier_id)
                )
                SELECT unit_code, figure, count(*) FILTER (WHERE change > 0) AS dossiers_in,
                       count(*) FILTER (WHERE change < 0) AS dossiers_out,
                       array_to_string(list(dossier_id ORDER BY dossier_id)[1:$examples], ', ') AS example_dossiers
                FROM (UNPIVOT changed ON {FIGURE_LIST_SQL} INTO NAME figure VALUE change)
                WHERE change <> 0
                GROUP BY ALL
            """, {"step": step, "examples": EXAMPLES}).df()
            moves.append(frame.assign(rule=rule, rule_label=RULES[rule][1]))
        values = con.execute(f"""
            WITH per_unit AS (SELECT step, unit_code, {SUMS_SQL} FROM states GROUP BY ALL),
            long AS (UNPIVOT per_unit ON {FIGURE_LIST_SQL} INTO NAME figure VALUE value)
            SELECT unit_code, figure,
                   coalesce(sum(value) FILTER (WHERE step = 0), 0)::BIGINT AS province_value,
                   coalesce(sum(value) FILTER (WHERE step = $last), 0)::BIGINT AS against_value
            FROM long GROUP BY ALL
        """, {"last": len(path) - 1}).df()
    finally:
        con.close()
    moved = pd.concat(moves) if moves else pd.DataFrame(columns=["unit_code", "figure", "dossiers_in", "dossiers_out",
                                                                  "example_dossiers", "rule", "rule_label"])
    out = moved.merge(values, on=["unit_code", "figure"], how="left")
    out = out.assign(period_start=period.start, period_end=period.end, rule_set=province.name, against=against.name)
    out["figure_order"] = out["figure"].map({f: i for i, f in enumerate(FACT_FIGURES)})
    out["rule_order"] = out["rule"].map({r: i for i, r in enumerate(RULES)})
    out = out.sort_values(["unit_code", "figure_order", "rule_order"]).reset_index(drop=True)
    for name in ("province_value", "against_value", "dossiers_in", "dossiers_out"):
        out[name] = out[name].astype("int64")
    return out[MOVE_COLUMNS]


def figures_under(dossiers_path: Path, period: Period, rules: RuleSet, sources: list[str] | None = None) -> pd.DataFrame:
    """Per unit, every explained figure under one rule set (the explanation's two ends)."""
    con = duck.connect()
    try:
        con.execute("CREATE TEMP TABLE dossiers AS SELECT * FROM read_parquet($path) "
                    "WHERE $all_sources OR list_contains($sources, source_id)",
                    {"path": str(dossiers_path), "all_sources": sources is None, "sources": list(sources or [])})
        frame = con.execute(f"SELECT unit_code, {SUMS_SQL} FROM (SELECT unit_code, {MEMBERS_SQL} FROM ({CLASSIFIED_SQL})) "
                            "GROUP BY ALL ORDER BY unit_code", classification_params(period, rules)).df()
        return frame.astype({name: "int64" for name in MEMBERSHIP})
    finally:
        con.close()
