"""What every validated dataset shares: one ephemeral GX session per run, the expectation adder
(an expectation carries its check id and columns in `meta` and the check's severity from
tthc/checks.py), the key and count expectations common to Biểu 06 rows and reconciled
figures, and the small helpers that turn a frame's row into a finding's values.

A dataset module (bieu06_rows, dossier_records, unit_quarters, reconciled_figures) keeps its
preparation, its suite and its messages side by side; its messages are a mapping check id →
message builder, and `check_messages` makes sure every check its suite can fail has one.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.checkpoint import Checkpoint, UpdateDataDocsAction  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from tthc.checks import CHECKS  # noqa: E402
from tthc.form import FIGURES  # noqa: E402

ROW_ID = "row_id"
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID],
                 "partial_unexpected_count": 0}
# one failed expectation: (check id, severity, columns, failing row ids)
Failed = tuple[str, str, list[str], list[int]]


class GxSession:
    """One ephemeral GX context for a run: a pandas data source, one checkpoint per frame, and
    (when given a folder) a Data Docs site there, updated by every checkpoint."""

    def __init__(self, docs_dir: Path | None = None):
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        for site in list(self.context.get_config().data_docs_sites or {}):
            self.context.delete_data_docs_site(site)
        if docs_dir is not None:
            shutil.rmtree(docs_dir, ignore_errors=True)
            self.context.add_data_docs_site("run", {
                "class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
        self.source = self.context.data_sources.add_pandas("tthc")
        self.results: dict[str, dict] = {}
        self.runs: dict[str, int] = {}

    def validate(self, frame: pd.DataFrame, suite: gx.ExpectationSuite) -> list[Failed]:
        """Runs `suite` on `frame`; returns (check id, severity, columns, failing row ids) per failed expectation."""
        self.runs[suite.name] = self.runs.get(suite.name, 0) + 1
        name = suite.name if self.runs[suite.name] == 1 else f"{suite.name}_{self.runs[suite.name]}"
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(name)
        suite.name = name
        suite = self.context.suites.add(suite)
        definition = self.context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        actions = [UpdateDataDocsAction(name="data_docs")] if self.docs_dir is not None else []
        checkpoint = self.context.checkpoints.add(Checkpoint(
            name=f"{name}_checkpoint", validation_definitions=[definition], actions=actions, result_format=RESULT_FORMAT))
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        outcome = next(iter(result.run_results.values()))
        self.results[suite.name] = outcome.to_json_dict()
        failed = []
        for item in outcome.results:
            if item.success:
                continue
            meta = item.expectation_config.meta or {}
            check_id = meta.get("check_id", item.expectation_config.type)
            severity = getattr(item.expectation_config, "severity", None)
            severity = str(getattr(severity, "value", severity) or CHECKS.get(check_id, CHECKS["schema.key_present"]).severity)
            ids = [int(i[ROW_ID] if isinstance(i, dict) else i) for i in item.result.get("unexpected_index_list") or []]
            if not ids and item.result.get("unexpected_count") is None and "exception_info" in item.to_json_dict():
                raise RuntimeError(f"GX could not evaluate {check_id}: {item.exception_info}")
            failed.append((check_id, severity, list(meta.get("columns", [])), ids))
        return failed

    def forget_results(self) -> None:
        """A stream validated chunk by chunk keeps no chunk's results."""
        self.results.clear()

    def write_results(self, path: Path) -> None:
        path.write_text(json.dumps(self.results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")


def sieve(frame: pd.DataFrame, suite: gx.ExpectationSuite) -> list[Failed]:
    """What `GxSession.validate` would report, computed with numpy for the row-wise expectations
    the row suites use (not null, in a set, between; missing values are not unexpected, as in
    GX). A stream of chunks uses it to count failing rows and to pick the few it lists, so that
    GX runs on those rows only: GX's cost grows with every failing row it lists."""
    failed = []
    for expectation in suite.expectations:
        config = expectation.configuration if hasattr(expectation, "configuration") else expectation
        kind, kwargs = config.type, config.kwargs
        if kind == "expect_compound_columns_to_be_unique":
            raise ValueError("sieve: key uniqueness is a column computed over the whole stream (KEY_UNIQUE)")
        values = frame[kwargs["column"]]
        present = values.notna().to_numpy()
        if kind == "expect_column_values_to_not_be_null":
            bad = ~present
        elif kind == "expect_column_values_to_be_in_set":
            bad = present & ~values.isin(kwargs["value_set"]).to_numpy()
        elif kind == "expect_column_values_to_be_between":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            bad = np.zeros(len(frame), dtype=bool)
            if kwargs.get("min_value") is not None:
                bad |= present & (numbers < kwargs["min_value"])
            if kwargs.get("max_value") is not None:
                bad |= present & (numbers > kwargs["max_value"])
        else:
            raise ValueError(f"sieve: expectation {kind} is not row-wise")
        if bad.any():
            meta = expectation.meta or {}
            check_id = meta.get("check_id", kind)
            severity = getattr(expectation, "severity", None)
            severity = str(getattr(severity, "value", severity) or CHECKS[check_id].severity)
            failed.append((check_id, severity, list(meta.get("columns", [])),
                           frame[ROW_ID].to_numpy()[bad].tolist()))
    return failed


# ---------------------------------------------------------------- building suites

def adder(suite: gx.ExpectationSuite):
    """`add(expectation, check_id, columns[, severity])`: the expectation with its check id, columns
    and the check's severity from the registry, or another one the check allows (an id not in
    tthc/checks.py is a KeyError here, a severity it does not allow a ValueError)."""
    def add(expectation, check_id: str, columns: list[str], severity: str | None = None):
        check = CHECKS[check_id]
        if severity is not None and not check.allows(severity):
            raise ValueError(f"check {check_id} is {check.severity}, not {severity}")
        expectation.meta = {"check_id": check_id, "columns": columns}
        expectation.severity = severity or check.severity
        suite.add_expectation(expectation)
    return add


def is_true(column: str):
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True])


def breach_column(identity: str) -> str:
    """total − sum(known parts) where the identity is broken or bounded, 0 where it holds."""
    return f"breach_{identity}"


def checkable_column(identity: str) -> str:
    return f"checkable_{identity}"


KEY_UNIQUE = "key_unique"  # a column saying whether the row's key is unique across a whole stream of chunks


def add_keys_and_counts(add, unique_keys: bool | str, period_severity: str | None = None) -> None:
    """Keys present (and unique), counts non-negative, a period of the convention, a unit in force.
    `unique_keys=KEY_UNIQUE`: uniqueness is read from that column, computed beforehand over every
    chunk of a stream (a chunk alone cannot tell)."""
    for key in ("unit_code", "field_code"):
        add(gxe.ExpectColumnValuesToNotBeNull(column=key), "schema.key_present", [key])
    key_columns = ["unit_code", "period_start", "period_end", "field_code"]
    if unique_keys == KEY_UNIQUE:
        add(is_true(KEY_UNIQUE), "schema.key_unique", key_columns)
    elif unique_keys:
        add(gxe.ExpectCompoundColumnsToBeUnique(column_list=key_columns), "schema.key_unique", key_columns)
    for name in FIGURES:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0), "figures.non_negative", [name])
    add(is_true("period_ok"), "period.convention", ["period_start", "period_end"], period_severity)
    add(is_true("unit_in_force"), "unit.known", ["unit_code"])


def suite_checks(suite: gx.ExpectationSuite) -> set[str]:
    """The check ids a suite can report."""
    return {(e.meta or {}).get("check_id") for e in suite.expectations}


def check_messages(suite: gx.ExpectationSuite, messages: Mapping[str, Callable]) -> gx.ExpectationSuite:
    """The suite, once every check it can report is in the registry and has a message builder."""
    unknown = {c for c in suite_checks(suite) if c not in CHECKS or c not in messages}
    if unknown:
        raise KeyError(f"suite {suite.name}: checks without a registry entry or a message: {sorted(unknown)}")
    return suite


# ---------------------------------------------------------------- values of a row

def plain(value):
    """A frame's cell as a JSON-able plain value: None for NaN/NA, int for a whole float."""
    if value is None or (not isinstance(value, (str, list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def json_or_none(value) -> str | None:
    return json.dumps(value, ensure_ascii=False) if value else None
