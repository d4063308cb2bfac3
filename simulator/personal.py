"""Applicants' personal data, seeded into the sources so that leak tests have something to find.

Values are built from small tables of names and places and picked by index, so that a
million applicants cost a few array operations rather than a million string formats.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from itertools import product

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator import vocab
from simulator.world import World

EMAIL_SHARE = 0.30
HOME_PROVINCE_SHARE = 0.90  # ID numbers issued with the province as place of birth


@dataclass
class Applicants:
    name: pa.Array
    id_number: pa.Array
    phone: pa.Array
    address: pa.Array
    email: pa.Array

    def take(self, index: np.ndarray) -> "Applicants":
        index = pa.array(index)
        return Applicants(*(getattr(self, f).take(index) for f in self.__dataclass_fields__))


def ascii_fold(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _full_names(gender: str) -> tuple[np.ndarray, np.ndarray]:
    """Every family × middle × given name, and its e-mail handle (nongvanan)."""
    parts = ([f for f, _ in vocab.FAMILY_NAMES], vocab.MIDDLE_NAMES[gender], vocab.GIVEN_NAMES[gender])
    folded = [[ascii_fold(word).lower() for word in words] for words in parts]
    names = [" ".join(words) for words in product(*parts)]
    handles = ["".join(words) for words in product(*folded)]
    return np.array(names, dtype=object), np.array(handles, dtype=object)


def _addresses(world: World, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Addresses per commune (a row of HAMLETS_PER_COMMUNE each) and the row of each unit."""
    units = world.units
    names = dict(zip(units["unit_code"][units["old"]], units["unit_name"][units["old"]]))
    communes = world.level_ids("commune")
    row_of_unit = np.full(len(units), -1)
    table = []
    for row, uid in enumerate(communes):
        rec = units.iloc[uid]
        if rec["unit_name"].startswith(("Phường", "Thị trấn")):
            places = [f"Tổ dân phố {k}" for k in sorted(rng.choice(np.arange(1, 16), vocab.HAMLETS_PER_COMMUNE, replace=False))]
        else:
            places = [f"Xóm {vocab.HAMLETS[k]}" for k in rng.choice(len(vocab.HAMLETS), vocab.HAMLETS_PER_COMMUNE, replace=False)]
        district = f", {names[rec['parent_code']]}" if rec["old"] and rec["parent_code"] in names else ""
        table.extend(f"{place}, {rec['unit_name']}{district}, {world.province_name}" for place in places)
        row_of_unit[uid] = row
    return np.array(table, dtype=object), row_of_unit


def _home_communes(world: World, unit: np.ndarray, received: np.ndarray, reform: int, rng: np.random.Generator) -> np.ndarray:
    """The commune an applicant lives in: the commune itself, a commune of the district, or
    any commune of the unit system in force when the dossier was received."""
    units = world.units
    level = units["level"].to_numpy()[unit]
    home = np.where(level == "commune", unit, -1)
    communes = world.level_ids("commune")
    old = units["old"].to_numpy()
    parents = units["parent_code"].to_numpy()
    for uid in world.level_ids("district"):
        mask = unit == uid
        pool = communes[old[communes] & (parents[communes] == units.at[uid, "unit_code"])]
        if mask.any() and pool.size:
            home[mask] = pool[rng.integers(0, pool.size, int(mask.sum()))]
    for before_reform, pool in ((True, communes[old[communes]]), (False, communes[~old[communes]])):
        mask = (home < 0) & ((received < reform) == before_reform)
        if mask.any():
            home[mask] = pool[rng.integers(0, pool.size, int(mask.sum()))]
    return home


def applicants(world: World, unit: np.ndarray, received: np.ndarray, reform: int, rng: np.random.Generator) -> Applicants:
    n = unit.size
    male, male_handles = _full_names("male")
    female, female_handles = _full_names("female")
    names = np.concatenate([male, female])
    handles = np.concatenate([male_handles, female_handles])
    family_p = np.array([w for _, w in vocab.FAMILY_NAMES], dtype=float)
    family_p /= family_p.sum()

    is_female = rng.random(n) < 0.5
    family = rng.choice(len(vocab.FAMILY_NAMES), n, p=family_p)
    per_family = np.where(is_female, female.size, male.size) // len(vocab.FAMILY_NAMES)
    rest = (rng.random(n) * per_family).astype(np.int64)
    name_index = np.where(is_female, male.size, 0) + family * per_family + rest

    birth_year = rng.integers(1945, 2008, n)
    century_sex = np.where(birth_year >= 2000, 2, 0) + is_female
    home_province = int(world.province_code)
    birth_province = np.where(rng.random(n) < HOME_PROVINCE_SHARE, home_province, rng.integers(1, 97, n))
    id_number = birth_province * 10**9 + century_sex * 10**8 + (birth_year % 100) * 10**6 + rng.integers(0, 10**6, n)
    phone = 9 * 10**8 + rng.integers(0, 10**8, n)

    table, row_of_unit = _addresses(world, rng)
    home = _home_communes(world, unit, received, reform, rng)
    address = table[row_of_unit[home] * vocab.HAMLETS_PER_COMMUNE + rng.integers(0, vocab.HAMLETS_PER_COMMUNE, n)]

    with_email = rng.random(n) < EMAIL_SHARE
    email = pc.binary_join_element_wise(
        pa.array(handles[name_index], pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(birth_year % 100), pa.string()), 2, "0"),
        "@gmail.com",
        "",
    )
    return Applicants(
        name=pa.array(names[name_index], pa.string()),
        id_number=pc.utf8_lpad(pc.cast(pa.array(id_number), pa.string()), 12, "0"),
        phone=pc.utf8_lpad(pc.cast(pa.array(phone), pa.string()), 10, "0"),
        address=pa.array(address, pa.string()),
        email=pc.if_else(pa.array(with_email), email, pa.scalar(None, pa.string())),
    )
