"""Settings: the province file and the sources registry, with paths from the environment.

Lookup order for anything that varies by deployment: environment variable, then the
config file, then the embedded default. Credentials are never read from config files.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from tthc.periods import CONVENTIONS, Period, quarter
from tthc.rules import RuleSet, rule_set

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# vendor presets shipped with the project: config/vendors/<name>.yaml (docs/extractors.md,
# "Reading a vendor's database"); TTHC_VENDORS_DIR points elsewhere
PRESET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PRESET_FORBIDDEN = ("id", "kind", "preset", "connection_id", "covers")


ON_SOURCE_FAILURE = ("last_good_landing", "refuse")
# the earliest date a dossier's dates may plausibly carry (reliability.plausible_from); the latest is the run's moment
DEFAULT_PLAUSIBLE_FROM = date(2000, 1, 1)
RUN_BUDGET_ENV = "TTHC_RUN_BUDGET_SECONDS"


@dataclass(frozen=True)
class Outliers:
    """How far a unit's figure may stand from its references before it gates publishing
    (config/province.yaml `outliers:`, README "Validation"). A figure is compared with
    max(reference, min_count) for each reference it has (its dossier records, its last quarters,
    its peers' `peer_quantile`, the previous vintage); beyond `factor_critical` times every one
    of them the unit is withheld, beyond `factor_warning` it is published with a warning."""
    factor_critical: float = 20.0
    factor_warning: float = 5.0
    min_count: int = 50
    peer_quantile: float = 0.9
    min_peers: int = 8

    @classmethod
    def from_config(cls, doc: Any, where: str) -> Outliers:
        if doc is None:
            return cls()
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: outliers must be a mapping (factor_critical, factor_warning, min_count, …)")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(map(str, doc)) - known)
        if unknown:
            raise ConfigError(f"{where}: outliers: unknown keys {unknown} (known: {sorted(known)})")
        try:
            values = cls(**{k: (int(v) if k in ("min_count", "min_peers") else float(v)) for k, v in doc.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: outliers: every value must be a number ({exc})") from exc
        if not 1 < values.factor_warning <= values.factor_critical:
            raise ConfigError(f"{where}: outliers: need 1 < factor_warning ({values.factor_warning}) <= "
                              f"factor_critical ({values.factor_critical})")
        if values.min_count < 1 or values.min_peers < 1 or not 0 < values.peer_quantile <= 1:
            raise ConfigError(f"{where}: outliers: min_count and min_peers must be at least 1, peer_quantile in (0, 1]")
        return values


class ConfigError(ValueError):
    """A configuration file says something the pipeline cannot use."""


def repo_path(value: str | os.PathLike) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def vendors_dir() -> Path:
    return repo_path(os.environ.get("TTHC_VENDORS_DIR", "config/vendors"))


def deep_merge(base: Any, over: Any) -> Any:
    """`over` merged into `base`: mappings key by key, recursively (`over` wins); anything else
    (lists, scalars) is replaced whole. A key of `over` set to null removes the key of `base`.
    Keys are matched by their text, so a code written 1 in one file and '1' in the other is one key."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    merged = dict(base)
    for key, value in over.items():
        same = [k for k in merged if k == key or (k is not None and key is not None and str(k) == str(key))]
        previous = merged.pop(same[0]) if same else None
        for extra in same[1:]:
            merged.pop(extra)
        if value is None and same:
            continue
        merged[key] = deep_merge(previous, value) if same else value
    return merged


def read_preset(name: Any, where: str) -> dict[str, Any]:
    """A vendor preset, `config/vendors/<name>.yaml`; ConfigError naming `where` (the sources file
    and the source) when the name is not a preset."""
    folder = vendors_dir()
    if not isinstance(name, str) or not PRESET_NAME.fullmatch(name):
        raise ConfigError(f"{where}: preset {name!r} must match {PRESET_NAME.pattern} (a file of {folder})")
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ConfigError(f"{where}: unknown preset {name!r}: no {path} (presets: {', '.join(known) or 'none'})")
    preset = _read_yaml(path)
    forbidden = sorted(set(preset) & set(PRESET_FORBIDDEN))
    if forbidden:
        raise ConfigError(f"{path}: a preset says how a vendor's table is read, not {forbidden} (the source's entry does)")
    return preset


def resolve_preset(spec: dict[str, Any], where: str) -> dict[str, Any]:
    """The source entry deep-merged over its `preset` (the entry wins); an entry without one as is."""
    if "preset" not in spec:
        return spec
    return deep_merge(read_preset(spec["preset"], where), spec)


def var_dir() -> Path:
    return repo_path(os.environ.get("TTHC_VAR_DIR", "var"))


def default_warehouse_url() -> str:
    return os.environ.get("TTHC_WAREHOUSE_URL") or f"duckdb:///{var_dir() / 'warehouse.duckdb'}"


@dataclass(frozen=True)
class Source:
    id: str
    kind: str
    spec: dict[str, Any] = field(repr=False)

    @property
    def covers(self) -> list[dict[str, Any]]:
        return self.spec.get("covers", [])

    @property
    def connection_id(self) -> str | None:
        return self.spec.get("connection_id")

    @property
    def expected(self) -> bool:
        """Whether the source must deliver an input for every period it is extracted for
        (`expected:`, default true): a spreadsheet source whose folder has no inbox for the
        period then fails (`extract.source_missing`) instead of landing 0 rows as if no
        workbook had been sent. `expected: false` is for a source that may legitimately
        send nothing for a period."""
        value = self.spec.get("expected", True)
        if not isinstance(value, bool):
            raise ConfigError(f"source {self.id}: expected {value!r} must be true or false")
        return value

    def coverage(self, unit_code: str, level: str, period: Period) -> bool | None:
        """True/False when the source covers the unit completely/partly in the period, None if not at all."""
        for rule in self.covers:
            if rule.get("level") != level:
                continue
            if "units" in rule and unit_code not in rule["units"]:
                continue
            if unit_code in rule.get("exclude", []):
                continue
            if "from" in rule and period.end < date.fromisoformat(str(rule["from"])):
                continue
            if "until" in rule and period.end > date.fromisoformat(str(rule["until"])):
                continue
            return bool(rule.get("complete", True))
        return None


@dataclass
class Settings:
    province_file: Path
    sources_file: Path

    @cached_property
    def province_doc(self) -> dict[str, Any]:
        return _read_yaml(self.province_file)

    @property
    def province(self) -> dict[str, Any]:
        return self.province_doc["province"]

    @property
    def province_code(self) -> str:
        return str(self.province["code"])

    @property
    def national(self) -> bool:
        """`scope: national`: every province and commune of the unit lists, departments in each province."""
        return self.province.get("scope", "province") == "national"

    @property
    def departments_per_province(self) -> list[dict[str, str]]:
        return self.province_doc.get("departments_per_province", [])

    @property
    def timezone(self) -> str:
        return self.province.get("timezone", "Asia/Ho_Chi_Minh")

    @property
    def period_convention(self) -> str:
        convention = self.province.get("period_convention", "calendar_quarter")
        if convention not in CONVENTIONS:
            raise ConfigError(f"{self.province_file}: period_convention {convention!r} is not one of {CONVENTIONS}")
        return convention

    @property
    def definitions(self) -> dict[str, Any]:
        return self.province_doc.get("definitions") or {}

    @property
    def rule_set(self) -> RuleSet:
        """The Biểu 06 definition the province publishes (`definitions.rule_set`: a built-in name or
        a mapping of rules `based_on` one; docs/canonical-model.md, "Rule sets")."""
        try:
            return rule_set(self.definitions.get("rule_set"), f"{self.province_file}: definitions.rule_set")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def explain_against(self) -> list[RuleSet]:
        """The rule sets each run explains the province's figures against (`definitions.explain_against`)."""
        try:
            return [rule_set(name, f"{self.province_file}: definitions.explain_against")
                    for name in self.definitions.get("explain_against", [])]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def reference_data(self) -> Path:
        return repo_path(os.environ.get("TTHC_REFERENCE_DATA") or self.province_doc["reference_data"])

    @property
    def departments(self) -> list[dict[str, str]]:
        """The departments, each code once: a code listed again is left out (`repeated_departments`
        says which), so one slip in the file does not stop the quarter."""
        seen: set[str] = set()
        kept = []
        for dept in self.province_doc.get("departments", []):
            if str(dept["code"]) not in seen:
                seen.add(str(dept["code"]))
                kept.append(dept)
        return kept

    @property
    def repeated_departments(self) -> list[dict[str, str]]:
        """Department entries whose code an earlier entry of the province file already has."""
        listed = self.province_doc.get("departments", [])
        return [dept for i, dept in enumerate(listed) if any(str(d["code"]) == str(dept["code"]) for d in listed[:i])]

    @property
    def fields(self) -> list[dict[str, Any]]:
        return self.province_doc.get("fields", [])

    @property
    def district_fields_to_departments(self) -> dict[str, str]:
        """Field → the provincial department that took over the districts' dossiers of that field on the
        reform; the other fields' went to the new commune of the district's seat (`reform:` in the
        province file)."""
        value = (self.province_doc.get("reform") or {}).get("district_fields_to_departments") or {}
        known = {str(f["code"]) for f in self.fields}
        departments = {str(d["code"]) for d in self.departments}
        if not isinstance(value, dict) or not {str(k) for k in value} <= known \
                or not {str(v) for v in value.values()} <= departments:
            raise ConfigError(f"{self.province_file}: reform.district_fields_to_departments {value!r} must map "
                              f"configured field codes ({sorted(known)}) to the code of a department of `departments:`")
        return {str(k): str(v) for k, v in value.items()}

    @property
    def split_records(self) -> dict[str, str]:
        """Old commune split by the reform → the successor that took over its records in the software
        (`reform.split_records`): where a vendor keeps a split commune's code, its records go there."""
        value = (self.province_doc.get("reform") or {}).get("split_records") or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{self.province_file}: reform.split_records {value!r} must map old commune codes "
                              "(text, quoted) to the code of one of their successors")
        return dict(value)

    @property
    def reconciliation(self) -> dict[str, Any]:
        return self.province_doc.get("reconciliation", {})

    @property
    def on_source_failure(self) -> str:
        """What a run does with a source whose extraction failed after an earlier good landing of
        the period: `last_good_landing` (default) keeps its units on that landing, marked stale;
        `refuse` publishes no new vintage while any source failed (config/province.yaml `reliability:`)."""
        value = (self.province_doc.get("reliability") or {}).get("on_source_failure", "last_good_landing")
        if value not in ON_SOURCE_FAILURE:
            raise ConfigError(f"{self.province_file}: reliability.on_source_failure {value!r} is not one of "
                              f"{ON_SOURCE_FAILURE}")
        return value

    @property
    def plausible_from(self) -> date:
        """Dossier dates before this day are implausible (a typing error such as 1900): the
        record is kept and counted by its dates, with a `records.date_implausible` finding
        (config/province.yaml `reliability.plausible_from`, default 2000-01-01)."""
        value = (self.province_doc.get("reliability") or {}).get("plausible_from", DEFAULT_PLAUSIBLE_FROM)
        try:
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{self.province_file}: reliability.plausible_from {value!r} is not a date "
                              "(YYYY-MM-DD)") from None

    @property
    def run_budget_seconds(self) -> float | None:
        """The time a whole `tthc run` may take for its extractions (`reliability.run_budget_seconds`,
        TTHC_RUN_BUDGET_SECONDS overrides; none by default): a source still extracting when it is
        spent fails, and its last good landing of the period is used, as for any failure."""
        raw = os.environ.get(RUN_BUDGET_ENV) or (self.province_doc.get("reliability") or {}).get("run_budget_seconds")
        if raw in (None, ""):
            return None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if not value > 0:
            where = RUN_BUDGET_ENV if os.environ.get(RUN_BUDGET_ENV) else f"{self.province_file}: reliability.run_budget_seconds"
            raise ConfigError(f"{where} {raw!r} must be a number of seconds above 0")
        return value

    @property
    def outliers(self) -> Outliers:
        """The thresholds of `figures.outlier` (config/province.yaml `outliers:`; defaults when absent)."""
        return Outliers.from_config(self.province_doc.get("outliers"), str(self.province_file))

    @cached_property
    def sources(self) -> list[Source]:
        doc = _read_yaml(self.sources_file)
        sources = []
        for i, spec in enumerate(doc.get("sources", [])):
            if not isinstance(spec, dict) or "id" not in spec or "kind" not in spec:
                raise ConfigError(f"{self.sources_file}: source #{i + 1} needs an id and a kind")
            # a source id names folders (landing, quarantine, watermarks) and rows: a plain name only
            if not isinstance(spec["id"], str) or not SOURCE_ID.fullmatch(spec["id"]):
                raise ConfigError(f"{self.sources_file}: sources[{i}].id {spec['id']!r} must match {SOURCE_ID.pattern} "
                                  "(lower-case letters, digits, _): it names folders under var/")
            if any(s.id == spec["id"] for s in sources):
                raise ConfigError(f"{self.sources_file}: sources[{i}].id {spec['id']!r} is used twice")
            spec = resolve_preset(spec, f"{self.sources_file}: source {spec['id']!r}")
            for key in ("connection_id",):
                if key in spec and not (isinstance(spec[key], str) and SOURCE_ID.fullmatch(spec[key])):
                    raise ConfigError(f"{self.sources_file}: sources[{i}].{key} {spec[key]!r} must match "
                                      f"{SOURCE_ID.pattern}: it names an Airflow connection / AIRFLOW_CONN_ variable")
            sources.append(Source(spec["id"], spec["kind"], spec))
        return sources

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise ConfigError(f"{self.sources_file}: no source {source_id!r}")

    def period(self, label: str) -> Period:
        return quarter(label, self.period_convention)


def load_settings() -> Settings:
    return Settings(
        province_file=repo_path(os.environ.get("TTHC_PROVINCE_FILE", "config/province.yaml")),
        sources_file=repo_path(os.environ.get("TTHC_SOURCES_FILE", "config/sources.yaml")),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return doc
