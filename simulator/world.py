"""The simulated province: its reporting units, the fields each handles, the procedures of
each field, and the habits of each unit (volume, online share, punctuality, coverage).

Everything here is drawn once per sample, so that a unit behaves the same way in every
quarter and the quarters differ only by chance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from tthc.config import ConfigError, Settings
from simulator import vocab
from tthc.units import OPEN_END, checked_conversion, successors, units_for_province

PORTAL = "portal_dvc"
AGENCY = "agency_db_xd_tnmt"
TANDAN = "tandan_departments"  # Tân Dân's one-stop-shop database (simulator/vendors.py)
OPENCPS = "opencps_departments"  # OpenCPS v2's database (simulator/vendors.py)
SPREADSHEETS = "commune_spreadsheets"
NOT_SERVED = "none"
SERVED_BY = (PORTAL, AGENCY, NOT_SERVED, TANDAN, OPENCPS)  # served_by codes 0 … 4
# departments' own software: the sources whose registry entry lists the departments it serves
OWN_SOFTWARE = (AGENCY, TANDAN, OPENCPS)

PROCESSING_DAYS = np.array([1, 2, 3, 5, 7, 10, 12, 15, 20, 25, 30])
PROCESSING_DAYS_WEIGHTS = np.array([10, 10, 12, 14, 10, 12, 6, 10, 8, 4, 4], dtype=float)
FEES = np.array([10_000, 20_000, 30_000, 50_000, 100_000, 200_000, 500_000, 1_000_000])
FEE_SHARE = 0.40


@dataclass
class World:
    province_code: str
    province_name: str
    reform_date: date
    units: pd.DataFrame  # positional index = unit id; columns of tthc.units plus `old`
    fields: pd.DataFrame  # code, name, levels
    procedures: pd.DataFrame  # field, code, name, result, days, fee
    field_weights: np.ndarray  # units × fields, zero where the unit does not handle the field
    procedure_ids: np.ndarray  # fields × max procedures per field, -1 padding
    procedure_weights: np.ndarray  # fields × max procedures per field
    volume: np.ndarray  # per unit, relative within its level
    online_share: np.ndarray
    outcome_shares: np.ndarray  # units × (early, on time, late)
    portal_share: np.ndarray  # share of a unit's dossiers its software records
    served_by: np.ndarray  # per unit: index into SERVED_BY (portal, or the department's own software)
    digitised_share: np.ndarray
    formula_totals: np.ndarray  # communes typing =D+E+F totals rather than numbers
    # per unit: the new communes that take over an old commune's or district's pending dossiers on the
    # reform (empty for the other units), as tthc.units.successors reads the corrected conversion
    successors: list[np.ndarray]
    # per field: the department that took over the districts' pending dossiers of the field on the reform
    # (reform.district_fields_to_departments), -1 where they went to the seat's new commune
    district_field_department: np.ndarray

    @property
    def commune_fields(self) -> np.ndarray:
        return np.flatnonzero(self.fields["levels"].map(lambda levels: "commune" in levels).to_numpy())

    def level_ids(self, level: str) -> np.ndarray:
        return np.flatnonzero((self.units["level"] == level).to_numpy())


def build_world(settings: Settings, rng: np.random.Generator) -> World:
    units = units_for_province(settings)
    units = units[units["level"] != "province"].reset_index(drop=True)
    units["old"] = units["valid_to"] < OPEN_END
    new_from = units.loc[~units["old"] & (units["level"] == "commune"), "valid_from"]
    if new_from.empty:
        raise ConfigError(f"{settings.reference_data}: no communes of the new unit system for province {settings.province_code}")
    fields = pd.DataFrame(settings.fields, columns=["code", "name", "levels"])
    if fields.empty:
        raise ConfigError(f"{settings.province_file}: no fields configured")
    n_units, n_fields = len(units), len(fields)

    handles = np.zeros((n_units, n_fields), dtype=bool)
    for level in ("district", "commune"):
        at_level = fields["levels"].map(lambda levels, level=level: level in levels).to_numpy()
        handles[np.ix_((units["level"] == level).to_numpy(), at_level)] = True
    departments = np.flatnonzero((units["level"] == "department").to_numpy())
    handles[departments] = _department_fields(units.loc[departments, "unit_name"].tolist(), fields, rng)

    popularity = rng.lognormal(0.0, 0.5, n_fields)
    field_weights = np.zeros((n_units, n_fields))
    for uid in range(n_units):
        handled = np.flatnonzero(handles[uid])
        if handled.size:
            field_weights[uid, handled] = rng.dirichlet(popularity[handled] * 3.0)

    procedures, procedure_ids, procedure_weights = _procedures(fields, rng)

    own = {code: SERVED_BY.index(source_id) for source_id in OWN_SOFTWARE for code in served_units(settings, source_id)}
    served_by = np.array([own.get(code, 0) for code in units["unit_code"]], dtype=np.int8)
    old_commune = (units["old"] & (units["level"] == "commune")).to_numpy()
    portal_share = np.where(old_commune, rng.uniform(0.40, 0.95, n_units), 1.0)

    reform_date = min(new_from)
    new_ids = {code: i for i, code in units.loc[~units["old"] & (units["level"] == "commune"), "unit_code"].items()}
    taken = successors(checked_conversion(settings).table, units, reform_date)
    old_ids = units.index[units["old"] & units["level"].isin(["commune", "district"])]
    successor_ids = [np.array([new_ids[c] for c in taken.get(units.at[i, "unit_code"], []) if c in new_ids], dtype=np.int64)
                     if i in old_ids else np.array([], dtype=np.int64) for i in range(n_units)]

    unit_ids = {code: i for i, code in units["unit_code"].items()}
    to_departments = settings.district_fields_to_departments
    field_department = np.array([unit_ids.get(to_departments.get(code, ""), -1) for code in fields["code"]],
                                dtype=np.int64)

    return World(
        province_code=settings.province_code,
        province_name=str(settings.province.get("name", settings.province_code)),
        reform_date=reform_date,
        units=units,
        fields=fields,
        procedures=procedures,
        field_weights=field_weights,
        procedure_ids=procedure_ids,
        procedure_weights=procedure_weights,
        volume=rng.lognormal(0.0, 0.6, n_units),
        online_share=rng.uniform(0.30, 0.70, n_units),
        outcome_shares=rng.dirichlet([12.0, 6.0, 2.0], n_units),
        portal_share=portal_share,
        served_by=served_by,
        digitised_share=rng.uniform(0.40, 0.95, n_units),
        formula_totals=rng.random(n_units) >= 1 / 3,
        successors=successor_ids,
        district_field_department=field_department,
    )


def served_units(settings: Settings, source_id: str) -> list[str]:
    """Departments whose own software is the source `source_id`, as the sources registry says
    (the `units` of its covers); none when the registry has no such source."""
    try:
        source = settings.source(source_id)
    except ConfigError:
        return []
    return [code for cover in source.covers for code in cover.get("units", [])]


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold())) - {"và", "sở", "ban"}


def _department_fields(names: list[str], fields: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Which department handles which field: by the words their names share (Sở Y tế: Y tế)
    or a known hint (Hộ tịch: Sở Tư pháp), the fields still unmatched dealt out to the
    departments left without one."""
    eligible = np.flatnonzero(fields["levels"].map(lambda levels: "department" in levels).to_numpy())
    handles = np.zeros((len(names), len(fields)), dtype=bool)
    for d, name in enumerate(names):
        dept_words = _words(name)
        for f in eligible:
            field_words = _words(fields.at[f, "name"])
            hint = vocab.FIELD_DEPARTMENT_HINTS.get(fields.at[f, "code"])
            shares_words = field_words and len(field_words & dept_words) / len(field_words) > 0.5
            if shares_words or (hint and hint.casefold() in name.casefold()):
                handles[d, f] = True
    unmatched = [f for f in eligible if not handles[:, f].any()]
    idle = [d for d in range(len(names)) if not handles[d].any()]
    order = rng.permutation(len(idle)) if idle else np.array([], dtype=int)
    for i, f in enumerate(unmatched):
        d = idle[order[i % len(idle)]] if idle else int(rng.integers(len(names)))
        handles[d, f] = True
    for d in range(len(names)):
        if not handles[d].any() and eligible.size:
            handles[d, rng.choice(eligible)] = True
    return handles


def _procedures(fields: pd.DataFrame, rng: np.random.Generator):
    rows = []
    for f, rec in enumerate(fields.itertuples(index=False)):
        for name, result in vocab.procedures_for(rec.code, rec.name):
            rows.append({"field": f, "name": name, "result": result})
    procedures = pd.DataFrame(rows)
    n = len(procedures)
    numbers = rng.choice(13_000, n, replace=False)
    kinds = rng.choice([1, 2], n)
    procedures["code"] = [f"{k}.{num:06d}" for k, num in zip(kinds, numbers)]
    procedures["days"] = rng.choice(PROCESSING_DAYS, n, p=PROCESSING_DAYS_WEIGHTS / PROCESSING_DAYS_WEIGHTS.sum())
    procedures["fee"] = np.where(rng.random(n) < FEE_SHARE, rng.choice(FEES, n), 0)

    width = int(procedures.groupby("field").size().max())
    ids = np.full((len(fields), width), -1)
    weights = np.zeros((len(fields), width))
    for f, group in procedures.groupby("field"):
        ids[f, : len(group)] = group.index
        weights[f, : len(group)] = rng.dirichlet(np.full(len(group), 2.0))
    return procedures, ids, weights
