"""Continuity across a reform of the units (1 July 2025): the dossiers pending at the old units at the
end of the last quarter before it are handed over to their successors and reported there as carried
over at the start of the first quarter after it. Per successor group and field, the old units' pending
must equal the successors' carried-over: less means dossiers lost in the hand-over, more means dossiers
counted twice.

Successors (docs/reconciliation.md, "Across the reform"): an old commune's are the new communes the
official conversion (with the province's corrections) puts it in, all of them for a split; a district's,
the successor of its seat (tthc.units.successors), except for the fields the province gave to a department
(`reform.district_fields_to_departments`), whose successor is that department; a department
is its own successor. Groups are the connected units of these links, so a split joins its successors.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tthc.findings import Finding, finding
from tthc.periods import Period

CHECK = "continuity.handover"
UNCHECKED = "continuity.unchecked"
GROUP_COLUMNS = ["field_code", "group", "unit_code", "side"]


def successor_groups(taken_over_by: dict[str, list[str]], before: pd.DataFrame, after: pd.DataFrame,
                     department_fields: dict[str, str], fields: list[str]) -> pd.DataFrame:
    """(field_code, group, unit_code, side) with side `old` (reports pending before the reform) or `new`
    (reports carried-over after it); a department is on both sides. `taken_over_by`: old commune or
    district → the units that took its dossiers (tthc.units.successors); `department_fields`: field → the
    department that took the districts' dossiers of that field instead; `before` / `after`: the units in force on either
    side of the reform (unit_code, level)."""
    level_before = dict(zip(before["unit_code"], before["level"]))
    new_units = set(after.loc[after["level"].isin(["commune", "department"]), "unit_code"])
    successors = {old: set(new) & new_units for old, new in taken_over_by.items()}
    departments = sorted(set(before.loc[before["level"] == "department", "unit_code"])
                         & set(after.loc[after["level"] == "department", "unit_code"]))
    rows = []
    for field in fields:
        edges = []
        for unit, level in level_before.items():
            if level == "commune" or (level == "district" and field not in department_fields):
                edges += [(("old", unit), ("new", new)) for new in successors.get(unit, ())] or [(("old", unit),) * 2]
            elif level == "district":
                dept = department_fields[field]
                edges += [(("old", unit), ("new", dept))] if dept in departments else [(("old", unit),) * 2]
        edges += [(("old", dept), ("new", dept)) for dept in departments]
        edges += [(("new", new),) * 2 for new in sorted(new_units - set(departments))]
        rows += [{"field_code": field, **member} for member in _components(edges)]
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _components(edges: list[tuple]) -> list[dict]:
    """The connected units of a graph given by its edges (a unit alone is an edge to itself), numbered
    in the order of their smallest member."""
    nodes = sorted({node for edge in edges for node in edge})
    index = {node: i for i, node in enumerate(nodes)}
    a = np.array([index[x] for x, _ in edges])
    b = np.array([index[y] for _, y in edges])
    _, label = connected_components(coo_matrix((np.ones(len(edges)), (a, b)), shape=(len(nodes),) * 2), directed=False)
    first: dict[int, int] = {}
    for component in label:
        first.setdefault(int(component), len(first))
    return [{"group": first[int(label[i])], "unit_code": unit, "side": side} for i, (side, unit) in enumerate(nodes)]


def handover_findings(groups: pd.DataFrame, pending_before: pd.DataFrame, carried_after: pd.DataFrame,
                      published_before: set[str], published_after: set[str], names: dict[tuple[str, str], str],
                      previous: Period, period: Period, reform: date) -> list[Finding]:
    """One `continuity.handover` warning per group and field whose hand-over does not balance, naming the
    old units and their successors; one `continuity.unchecked` info per group where a member has no
    published figures on its side (withheld or missing: the balance cannot be told).

    `pending_before`: unit_code, field_code, pending_total of `previous`; `carried_after`: unit_code,
    field_code, carried_over of `period`; `published_before` / `_after`: the units published in each (a
    published unit without a row of the field had none); `names`: (side, unit_code) → unit name."""
    pending = pending_before.groupby(["unit_code", "field_code"])["pending_total"].sum().to_dict()
    carried = carried_after.groupby(["unit_code", "field_code"])["carried_over"].sum().to_dict()
    out: list[Finding] = []
    unchecked: dict[tuple, list[str]] = {}
    for (field, _), members in groups.groupby(["field_code", "group"], sort=True):
        old = members.loc[members["side"] == "old", "unit_code"].tolist()
        new = members.loc[members["side"] == "new", "unit_code"].tolist()
        handed = sum(int(pending.get((u, field), 0) or 0) for u in old)
        received = sum(int(carried.get((u, field), 0) or 0) for u in new)
        absent = [f"{names.get(('old', u), u)} ({u}, cũ)" for u in old if u not in published_before] + \
                 [f"{names.get(('new', u), u)} ({u}, mới)" for u in new if u not in published_after]
        if absent:
            if handed or received:
                unchecked.setdefault(tuple(sorted(absent)), []).append(field)
            continue
        if handed == received:
            continue
        old_text = ", ".join(f"{names.get(('old', u), u)} ({u})" for u in old)
        new_text = ", ".join(f"{names.get(('new', u), u)} ({u})" for u in new) or "không có đơn vị nào"
        if received < handed:
            verdict = (f"thiếu {handed - received} hồ sơ: hồ sơ bị mất khi bàn giao (đơn vị cũ còn đang giải quyết "
                       "nhưng không đơn vị tiếp nhận nào tính là từ kỳ trước)")
        else:
            verdict = (f"thừa {received - handed} hồ sơ: hồ sơ bị tính hai lần khi bàn giao (đơn vị tiếp nhận tính "
                       "là từ kỳ trước nhiều hơn số đơn vị cũ còn đang giải quyết)")
        out.append(finding(
            CHECK,
            f"Bàn giao hồ sơ khi sắp xếp đơn vị hành chính ({reform:%d/%m/%Y}), lĩnh vực {field}: đơn vị cũ "
            f"{old_text} còn {handed} hồ sơ đang giải quyết (11) cuối kỳ {previous.label}; đơn vị tiếp nhận "
            f"{new_text} có {received} hồ sơ từ kỳ trước (6) đầu kỳ {period.label}: {verdict}",
            period.start, period.end, unit_code=new[0] if len(new) == 1 else None, field_code=field,
            columns=["carried_over", "pending_total"], observed=str(received), expected=str(handed),
            location=f"{','.join(old)} → {','.join(new)}"))
    for absent, fields in unchecked.items():
        out.append(finding(
            UNCHECKED,
            f"Không đối chiếu được bàn giao hồ sơ khi sắp xếp đơn vị hành chính (lĩnh vực {', '.join(sorted(fields))}): "
            f"chưa có số liệu đã công bố của {', '.join(absent)}", period.start, period.end,
            columns=["carried_over"], location=f"{previous.label} → {period.label}"))
    return out
