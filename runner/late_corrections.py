"""A quarter rerun for the late submissions and corrections the intake announced (asset events
of `tthc://intake/submissions`, dags/tthc_late_corrections.py): the same run as
`tthc run --period P --reason "late correction from …"`, one per period named, with every
announced reason in the new vintage's reason."""
from __future__ import annotations

import logging

from runner import pipeline

log = logging.getLogger("tthc.late_corrections")


def reasons_by_period(extras: list[dict]) -> dict[str, str]:
    """Each announced period with its reasons, in the order announced, repeats dropped."""
    found: dict[str, list[str]] = {}
    for extra in extras:
        period, reason = extra.get("period"), extra.get("reason")
        if not period:
            continue
        reasons = found.setdefault(period, [])
        if reason and reason not in reasons:
            reasons.append(reason)
    return {period: "; ".join(reasons) or "late correction from the intake" for period, reasons in found.items()}


def rerun(extras: list[dict]) -> dict[str, dict]:
    """Rerun every announced period; what each published (vintage, whether new)."""
    published = {}
    for period, reason in sorted(reasons_by_period(extras).items()):
        log.info("rerunning %s: %s", period, reason)
        summary = pipeline.run(pipeline.make_context(period, note=reason))
        published[period] = summary.get("published") or {}
    return published
