"""A late submission or a correction announced to Airflow as an asset event, so that a DAG
scheduled on the asset (`dags/tthc_late_corrections.py`) reruns the quarter with the reason.

Sent through Airflow's REST API only when it is configured (TTHC_INTAKE_AIRFLOW_URL, and a
token in TTHC_INTAKE_AIRFLOW_TOKEN or the file named by TTHC_INTAKE_AIRFLOW_TOKEN_FILE); an
API that does not answer is logged, never an error for the officer: the submission is in
place and the board shows it, and the quarter can be rerun by hand (README, runbook).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from intake.store import Submission
from tthc.periods import Period

log = logging.getLogger("tthc.intake")
SUBMISSIONS_ASSET_NAME = "tthc_intake_submissions"
SUBMISSIONS_ASSET_URI = "tthc://intake/submissions"


def correction_reason(submission: Submission, unit_name: str) -> str:
    """The vintage's reason, as the runbook words a late correction."""
    received = submission.submitted_at.strftime("%Y-%m-%d")
    why = submission.correction_reason or submission.explanation
    return f"late correction from {unit_name} ({submission.unit_code}), received {received}" + (f": {why}" if why else "")


def event_extra(submission: Submission, unit_name: str, period: Period) -> dict:
    """What the asset event carries: enough for the DAG to rerun the period with a reason."""
    return {"period": period.label, "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            "unit_code": submission.unit_code, "submission_id": submission.id, "file": submission.file,
            "sha256": submission.sha256, "replaces": submission.replaces,
            "reason": correction_reason(submission, unit_name)}


@dataclass
class Announcer:
    api_url: str | None = None
    token: str | None = None
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = None  # tests answer in place of Airflow

    @classmethod
    def from_environment(cls) -> Announcer:
        token = os.environ.get("TTHC_INTAKE_AIRFLOW_TOKEN")
        token_file = os.environ.get("TTHC_INTAKE_AIRFLOW_TOKEN_FILE")
        if not token and token_file:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        return cls(os.environ.get("TTHC_INTAKE_AIRFLOW_URL") or None, token or None)

    @property
    def configured(self) -> bool:
        return bool(self.api_url)

    def announce(self, submission: Submission, unit_name: str, period: Period) -> dict | None:
        """POST /api/v2/assets/events for the submissions asset; the extra sent, or None when
        Airflow is not configured or did not take it (logged)."""
        extra = event_extra(submission, unit_name, period)
        if not self.configured:
            log.info("Airflow is not configured (TTHC_INTAKE_AIRFLOW_URL): no asset event for %s", extra["reason"])
            return None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        base = self.api_url.rstrip("/")
        try:
            with httpx.Client(timeout=self.timeout, headers=headers, transport=self.transport) as client:
                found = client.get(f"{base}/api/v2/assets", params={"uri_pattern": SUBMISSIONS_ASSET_URI})
                found.raise_for_status()
                assets = [a for a in found.json().get("assets", []) if a.get("uri") == SUBMISSIONS_ASSET_URI]
                if not assets:
                    log.warning("Airflow at %s has no asset %s (is dags/tthc_late_corrections.py deployed?): "
                                "no event for %s", base, SUBMISSIONS_ASSET_URI, extra["reason"])
                    return None
                sent = client.post(f"{base}/api/v2/assets/events", json={"asset_id": assets[0]["id"], "extra": extra})
                sent.raise_for_status()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Airflow at %s did not take the asset event for %s: %s", base, extra["reason"], exc)
            return None
        log.info("asset event %s sent: %s", SUBMISSIONS_ASSET_URI, extra["reason"])
        return extra
