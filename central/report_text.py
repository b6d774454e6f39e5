"""The report as CSV and as a plain-text table, and the wording both renderers share."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from typing import Any

from central.report_model import FEW_RATINGS, NO_HOUR, Group, Report

CSV_COLUMNS = [
    "count",
    "score_1",
    "score_2",
    "score_3",
    "score_4",
    "score_5",
    "satisfied_pct",
    "misuse",
    "misuse_pct",
    "rated",
    "prompted",
    "prompts",
    "response_pct",
    "median_response_ms",
    "reasons",
]


# Device-sent text (window and staff ids, reasons) is printed as text: control characters
# (a terminal takes ESC sequences, CR and LF as commands) and bidi controls (which reverse
# what follows them on the line) are shown as U+FFFD instead.
UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A spreadsheet takes a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def shown(s: str) -> str:
    return UNSHOWN.sub("\ufffd", s)


def cell(v: Any) -> Any:
    """A CSV cell: text that a spreadsheet would run as a formula starts with `'` instead."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def plural(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def reasons_text(c: Counter[str]) -> str:
    return "; ".join(f"{shown(r)}:{n}" for r, n in sorted(c.items(), key=lambda x: (-x[1], x[0])))


def group_label(by: str, g: Group, names: dict[str, str]) -> str:
    if by == "hour":
        return "?" if g.key == NO_HOUR else f"{g.key:02d}:00"
    if by == "staff" and names.get(str(g.key)):
        return shown(f"{g.key} {names[str(g.key)]}")
    return shown(str(g.key))


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def callout_text(report: Report) -> str:
    """Which group is lowest, in words; says how it was chosen and never hides a small group."""
    lowest, among_enough = report.lowest_groups()
    if not lowest:
        return ""

    def names(gs: list[Group]) -> str:
        return " and ".join(group_label(report.by, g, report.names) for g in gs)

    def counts(gs: list[Group]) -> str:
        return ", ".join(plural(g.rated, "rating") for g in gs)

    text = (
        f"Lowest satisfaction: {names(lowest)} at {pct(lowest[0].satisfied_pct)} ({counts(lowest)})"
    )
    if all(g.few for g in lowest):
        text += ": few ratings, read with care"
        if among_enough:
            text += (
                f". Among groups with at least {FEW_RATINGS} ratings: {names(among_enough)} "
                f"at {pct(among_enough[0].satisfied_pct)} ({counts(among_enough)})"
            )
    return text + "."


CALLOUT_RULE = (
    f"The lowest satisfied share over all groups is named; a group with fewer than "
    f"{FEW_RATINGS} counted ratings is marked “few ratings”, and then the lowest group with at "
    f"least {FEW_RATINGS} is named as well."
)


def data_notes(report: Report) -> list[str]:
    """Facts about the data a reader must know: wrong time zones, unsynchronised clocks."""
    out = []
    for o in report.offsets:
        out.append(
            f"{o.device}: {plural(o.events, 'event')} stamped {', '.join(o.offsets)}, not "
            f"{o.expected} ({report.timezone}): the device's time zone is wrong (run "
            f"`careterm doctor` on it); the report counts them in {report.timezone} time"
        )
    for c in report.unsynced:
        out.append(
            f"{c.device}: {plural(c.events, 'event')} from a clock that was not synchronised "
            "(their times may be wrong)"
        )
    if report.orphan_reasons:
        out.append(
            f"{plural(report.orphan_reasons, 'reason')} without its rating in the database "
            "(not arrived, or lost): counted under the reason's own window and clerk"
        )
    return out


def delivery_summary(report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    open_g = [g for g in report.gap_list if g["state"] == "open"]
    lost = [g for g in report.gap_list if g["state"] == "lost"]
    lost_n = sum(g["lost_events"] for g in lost)
    text = (
        f"{plural(len(open_g), 'open gap')}, {plural(len(lost), 'gap')} with lost events "
        f"({plural(lost_n, 'event')})"
    )
    return open_g, lost, text


# -- CSV ---------------------------------------------------------------------------------------


def group_record(by: str, g: Group, names: dict[str, str]) -> dict[str, Any]:
    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.1f}"

    rec: dict[str, Any] = {by: "" if g.key == NO_HOUR else g.key}
    if by == "staff":
        rec["staff_name"] = names.get(str(g.key), "")
    rec.update(
        {
            "count": g.count,
            **{f"score_{i}": g.scores[i] for i in range(1, 6)},
            "satisfied_pct": num(g.satisfied_pct),
            "misuse": g.misuse,
            "misuse_pct": num(g.misuse_pct),
            "rated": g.rated,
            "prompted": g.prompted,
            "prompts": g.prompts,
            "response_pct": num(g.response_pct),
            "median_response_ms": "" if g.median_response_ms is None else g.median_response_ms,
            "reasons": reasons_text(g.reasons),
        }
    )
    return rec


def to_csv(report: Report) -> str:
    by = report.by
    cols = [by] + (["staff_name"] if by == "staff" else []) + CSV_COLUMNS
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for g in report.groups:
        w.writerow({k: cell(v) for k, v in group_record(by, g, report.names).items()})
    return buf.getvalue()


# -- table -------------------------------------------------------------------------------------


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, n: int, right: bool) -> str:
    fill = " " * max(0, n - _width(s))
    return fill + s if right else s + fill


def to_table(report: Report) -> str:
    by, names = report.by, report.names
    head = (
        [by]
        + (["name"] if by == "staff" else [])
        + ["count", "1", "2", "3", "4", "5", "satisfied", "misuse", "prompts", "response"]
        + ["median_ms", "reasons"]
    )
    body = []
    for g in [*report.groups, report.total]:
        if g is report.total:
            row = ["TOTAL"] + ([""] if by == "staff" else [])
        else:
            name = shown(names.get(str(g.key), ""))
            row = [group_label(by, g, {})] + ([name] if by == "staff" else [])
        row += [str(g.count)] + [str(g.scores[i]) for i in range(1, 6)]
        few = "*" if g is not report.total and g.rated and g.few else ""
        row += [
            pct(g.satisfied_pct) + few,
            str(g.misuse),
            str(g.prompts) if g.prompts else "-",
            pct(g.response_pct),
            str(g.median_response_ms or "-"),
            reasons_text(g.reasons)[:60],
        ]
        body.append(row)
    widths = [max(_width(r[i]) for r in [head, *body]) for i in range(len(head))]
    text_cols = {0, 1} if by == "staff" else {0}
    text_cols.add(len(head) - 1)
    lines = []
    for n, r in enumerate([head, *body]):
        if n == len(body):
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        lines.append(
            "  ".join(_pad(c, widths[i], i not in text_cols) for i, c in enumerate(r)).rstrip()
        )
    if not report.groups:
        lines.append("(no ratings in this period)")
    lines.append("")
    lines.append(
        "satisfied: share of the two best scores among counted ratings (misuse not counted); "
        "response: share of prompts answered by a counted rating (评价率)"
    )
    if any(g.rated and g.few for g in report.groups):
        lines.append(f"* fewer than {FEW_RATINGS} counted ratings")
    callout = callout_text(report)
    if callout:
        lines.append(callout)
    open_g, lost, summary = delivery_summary(report)
    lines.append("")
    lines.append(f"delivery: {summary}")
    for g in open_g + lost:
        lines.append(
            f"  {g['device']}: seq {g['first_seq']}-{g['last_seq']} {g['state']}"
            + (f", lost {g['lost']}" if g["lost"] else "")
        )
    for note in data_notes(report):
        lines.append(f"data: {note}")
    return "\n".join(lines) + "\n"
