"""`site report`: satisfaction figures per window, clerk, department, hour or day."""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from central.db import devices, gaps, open_db, prompts, ratings
from terminal.cliutil import UsageError

UNKNOWN = "(none)"
UNMAPPED = "(unmapped)"


@dataclass(frozen=True)
class RatingRow:
    window: str | None
    staff: str | None
    score: int
    scale: int
    reason: str | None
    misuse: bool
    response_ms: int | None
    day: str | None
    hour: int | None


@dataclass
class Group:
    """Figures for one group. Scores, satisfaction and reasons count ratings without misuse."""

    key: Any
    count: int = 0
    misuse: int = 0
    scores: Counter[int] = field(default_factory=Counter)
    satisfied: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    response_ms: list[int] = field(default_factory=list)

    def add(self, r: RatingRow) -> None:
        self.count += 1
        if r.misuse:
            self.misuse += 1
            return
        self.scores[r.score] += 1
        if r.score >= r.scale - 1:  # the two best scores of the rating's own scale
            self.satisfied += 1
        if r.reason:
            self.reasons[r.reason] += 1
        if r.response_ms is not None:
            self.response_ms.append(r.response_ms)

    @property
    def rated(self) -> int:
        return self.count - self.misuse

    @property
    def satisfied_pct(self) -> float | None:
        return round(100.0 * self.satisfied / self.rated, 1) if self.rated else None

    @property
    def misuse_pct(self) -> float | None:
        return round(100.0 * self.misuse / self.count, 1) if self.count else None

    @property
    def median_response_ms(self) -> int | None:
        return int(statistics.median(self.response_ms)) if self.response_ms else None

    @property
    def low(self) -> int:
        """Ratings with the scale's worst score."""
        return self.scores[1]


def parse_day(v: str, flag: str) -> str:
    if not v:
        return ""
    try:
        return date.fromisoformat(v).isoformat()
    except ValueError:
        raise UsageError(f"{flag} {v!r}: use a date like 2026-11-23") from None


def load_ratings(engine: Engine, day_from: str = "", day_to: str = "") -> list[RatingRow]:
    q = select(
        ratings.c.window,
        ratings.c.staff,
        ratings.c.score,
        ratings.c.scale,
        ratings.c.reason,
        ratings.c.misuse,
        ratings.c.response_ms,
        ratings.c.day,
        ratings.c.hour,
    )
    cond = []
    if day_from:
        cond.append(ratings.c.day >= day_from)
    if day_to:
        cond.append(ratings.c.day <= day_to)
    if cond:
        q = q.where(and_(*cond))
    with engine.connect() as conn:
        return [RatingRow(*r) for r in conn.execute(q)]


def load_windows(path: str) -> dict[str, str]:
    """windows.csv: columns `window,department` (department id or name, as the report should show)."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UsageError(f"--windows {path}: {e.strerror}") from None
    rd = csv.DictReader(io.StringIO(text))
    if not rd.fieldnames or not {"window", "department"} <= set(rd.fieldnames):
        raise UsageError(f"{path}: row 1: the header needs the columns window,department")
    out: dict[str, str] = {}
    for i, row in enumerate(rd, start=2):
        w, d = (row.get("window") or "").strip(), (row.get("department") or "").strip()
        if not w or not d:
            raise UsageError(f"{path}: row {i}: window and department must both be filled in")
        out[w] = d
    return out


def load_staff_names(path: str) -> dict[str, str]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"--staff {path}: {e}") from None
    if not isinstance(data, list):
        raise UsageError(f"--staff {path}: expected the staff list as published (a JSON array)")
    return {str(s.get("staff")): str(s.get("name", "")) for s in data if isinstance(s, dict)}


def key_fn(by: str, windows: dict[str, str]) -> Callable[[RatingRow], Any]:
    if by == "window":
        return lambda r: r.window or UNKNOWN
    if by == "staff":
        return lambda r: r.staff or UNKNOWN
    if by == "department":
        return lambda r: windows.get(r.window or "", UNMAPPED)
    if by == "hour":
        return lambda r: -1 if r.hour is None else r.hour
    if by == "day":
        return lambda r: r.day or UNKNOWN
    raise UsageError(f"--by {by!r}: use window, staff, department, hour or day")


def aggregate(
    rows: Iterable[RatingRow], key: Callable[[RatingRow], Any]
) -> tuple[list[Group], Group]:
    groups: dict[Any, Group] = {}
    total = Group("total")
    for r in rows:
        k = key(r)
        groups.setdefault(k, Group(k)).add(r)
        total.add(r)
    return [groups[k] for k in sorted(groups, key=lambda k: (isinstance(k, str), k))], total


def reasons_text(c: Counter[str]) -> str:
    return "; ".join(f"{r}:{n}" for r, n in sorted(c.items(), key=lambda x: (-x[1], x[0])))


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
    "median_response_ms",
    "reasons",
]


def group_record(by: str, g: Group, names: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {by: "" if g.key == -1 else g.key}
    if by == "staff":
        rec["staff_name"] = names.get(str(g.key), "")
    rec.update(
        {
            "count": g.count,
            **{f"score_{i}": g.scores[i] for i in range(1, 6)},
            "satisfied_pct": "" if g.satisfied_pct is None else f"{g.satisfied_pct:.1f}",
            "misuse": g.misuse,
            "misuse_pct": "" if g.misuse_pct is None else f"{g.misuse_pct:.1f}",
            "rated": g.rated,
            "median_response_ms": "" if g.median_response_ms is None else g.median_response_ms,
            "reasons": reasons_text(g.reasons),
        }
    )
    return rec


def to_csv(by: str, groups: list[Group], names: dict[str, str]) -> str:
    cols = [by] + (["staff_name"] if by == "staff" else []) + CSV_COLUMNS
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for g in groups:
        w.writerow(group_record(by, g, names))
    return buf.getvalue()


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, n: int, right: bool) -> str:
    fill = " " * max(0, n - _width(s))
    return fill + s if right else s + fill


def to_table(
    by: str,
    groups: list[Group],
    total: Group,
    names: dict[str, str],
    gap_list: list[dict[str, Any]],
) -> str:
    head = (
        [by]
        + (["name"] if by == "staff" else [])
        + ["count", "1", "2", "3", "4", "5", "satisfied", "misuse", "median_ms", "reasons"]
    )
    body = []
    for g in [*groups, total]:
        rec = group_record(by, g, names)
        label = (
            "TOTAL"
            if g is total
            else (f"{g.key:02d}:00" if by == "hour" and g.key != -1 else str(rec[by]))
        )
        row = [label] + ([rec.get("staff_name", "")] if by == "staff" else [])
        row += [str(rec["count"])] + [str(rec[f"score_{i}"]) for i in range(1, 6)]
        row += [
            f"{rec['satisfied_pct']}%" if rec["satisfied_pct"] != "" else "-",
            str(rec["misuse"]),
            str(rec["median_response_ms"] or "-"),
            rec["reasons"][:60],
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
    if not groups:
        lines.append("(no ratings in this period)")
    open_g = [g for g in gap_list if g["state"] == "open"]
    lost = [g for g in gap_list if g["state"] == "lost"]
    lines.append("")
    lines.append(
        f"delivery: {len(open_g)} open gaps, {len(lost)} gaps with lost events "
        f"({sum(g['lost_events'] for g in lost)} events)"
    )
    for g in open_g + lost:
        lines.append(
            f"  {g['device']}: seq {g['first_seq']}-{g['last_seq']} {g['state']}"
            + (f", lost {g['lost']}" if g["lost"] else "")
        )
    return "\n".join(lines) + "\n"


def _iso(t: float | None) -> str | None:
    return (
        None if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")
    )


def gap_rows(engine: Engine, state: str = "") -> list[dict[str, Any]]:
    q = select(gaps).order_by(gaps.c.device, gaps.c.first_seq)
    if state:
        q = q.where(gaps.c.state == state)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        {
            "device": g.device,
            "site": g.site,
            "first_seq": g.first_seq,
            "last_seq": g.last_seq,
            "state": g.state,
            "detected": _iso(g.detected_at),
            "resends": g.resends,
            "lost": g.lost or [],
            "lost_events": sum(b - a + 1 for a, b in (g.lost or [])),
            "closed": _iso(g.closed_at),
        }
        for g in rows
    ]


def device_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(devices).order_by(devices.c.device)).all()
    return [
        {
            "device": d.device,
            "site": d.site,
            "role": d.role,
            "state": d.state,
            "session": d.session,
            "acked_seq": d.acked_seq,
            "max_seq": d.max_seq,
            "last_seen": _iso(d.last_seen),
        }
        for d in rows
    ]


def render_report(args: argparse.Namespace) -> str:
    day_from = parse_day(args.date_from, "--from")
    day_to = parse_day(args.date_to, "--to")
    if day_from and day_to and day_from > day_to:
        raise UsageError(f"--from {day_from} is after --to {day_to}")
    if args.by == "department" and not args.windows:
        raise UsageError(
            "--by department needs --windows windows.csv (columns window,department): "
            "ratings carry a window, not a department"
        )
    windows = load_windows(args.windows)
    names = load_staff_names(args.staff)
    engine = open_db(args.db, create=False)
    from central.db import create_schema

    create_schema(engine)  # an empty report rather than an error on a new database
    rows = load_ratings(engine, day_from, day_to)
    groups, total = aggregate(rows, key_fn(args.by, windows))
    if args.format == "csv":
        return to_csv(args.by, groups, names)
    gap_list = gap_rows(engine)
    if args.format == "table":
        return to_table(args.by, groups, total, names, gap_list)
    from central.report_html import render_html

    by_hour, _ = aggregate(rows, key_fn("hour", windows))
    return render_html(
        title=args.title or "窗口服务满意度报告 Service satisfaction",
        by=args.by,
        groups=groups,
        total=total,
        by_hour=by_hour,
        names=names,
        period=(
            day_from or (min((r.day for r in rows if r.day), default="")),
            day_to or (max((r.day for r in rows if r.day), default="")),
        ),
        gap_list=gap_list,
        device_list=device_rows(engine),
    )


# -- Response rate (评价率, SPEC 9.3): prompted ratings / prompts --------------------------------


@dataclass(frozen=True)
class PromptRow:
    """A prompt that closed: `rated` (a rating without misuse carries its id) or the
    `outcome` of its `prompt` event (`expired`, `superseded`). Has the grouping fields of
    `RatingRow`, so `key_fn` groups it alike."""

    prompt: str
    window: str | None
    staff: str | None
    outcome: str
    day: str | None
    hour: int | None


def load_prompts(engine: Engine, day_from: str = "", day_to: str = "") -> list[PromptRow]:
    """Every closed prompt in the period, each once (by prompt id; a rating wins)."""
    cond_r = [ratings.c.misuse.is_(False), ratings.c.prompt.is_not(None)]
    cond_p = []
    if day_from:
        cond_r.append(ratings.c.day >= day_from)
        cond_p.append(prompts.c.day >= day_from)
    if day_to:
        cond_r.append(ratings.c.day <= day_to)
        cond_p.append(prompts.c.day <= day_to)
    r, p = ratings.c, prompts.c
    rated = select(r.prompt, r.window, r.staff, r.day, r.hour).where(and_(*cond_r))
    closed = select(p.prompt, p.window, p.staff, p.outcome, p.day, p.hour).where(and_(*cond_p))
    out: dict[str, PromptRow] = {}
    with engine.connect() as conn:
        for prompt, window, staff, day, hour in conn.execute(rated):
            out[prompt] = PromptRow(prompt, window, staff, "rated", day, hour)
        for prompt, window, staff, outcome, day, hour in conn.execute(closed):
            out.setdefault(prompt, PromptRow(prompt, window, staff, outcome, day, hour))
    return list(out.values())


@dataclass
class Response:
    prompts: int = 0
    rated: int = 0

    @property
    def pct(self) -> float | None:
        return round(100.0 * self.rated / self.prompts, 1) if self.prompts else None


def response_rates(
    rows: Iterable[PromptRow], key: Callable[[Any], Any]
) -> tuple[dict[Any, Response], Response]:
    """Prompts and prompted ratings per group (same keys as `aggregate`), and the total."""
    groups: dict[Any, Response] = {}
    total = Response()
    for r in rows:
        for g in (groups.setdefault(key(r), Response()), total):
            g.prompts += 1
            g.rated += r.outcome == "rated"
    return groups, total
