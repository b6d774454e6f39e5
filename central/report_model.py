"""Report figures from the site database: every query `site report` makes, and the per-group model.

The renderers (`central.report` for table and CSV, `central.report_html` for the page) only
format what `build_report` returns; nothing here formats text for a reader.

Where the figures come from (the `events` table, each event once by its envelope id):
- `rating` events: scores, misuse, response time, the prompt they answer, and (for pads
  before SPEC 9.3) a `reason` carried in the rating itself;
- `reason` events (`{"rating": <rating event id>, "reason": ...}`): the reason of a low
  score, asked after the rating was stored; it wins over a reason inside the rating;
- `prompt` events (`{"prompt": <id>, "outcome": "expired"|"superseded", ...}`): a prompt
  that closed without a rating.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from central.db import devices, events, gaps
from central.messages import parse_rating
from terminal.cliutil import UsageError

UNKNOWN = "(none)"
UNMAPPED = "(unmapped)"
NO_HOUR = -1
FEW_RATINGS = 5
"""A group with fewer counted ratings than this is marked "few ratings": its share can swing
by 20 points with one patient, so it is shown but never compared silently with the others."""
REPORT_TYPES = ("rating", "reason", "prompt")
GROUPINGS = ("window", "staff", "department", "hour", "day")
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class RatingFact:
    """One stored rating, its reason resolved, its time in the report's zone."""

    id: str
    device: str
    window: str | None
    staff: str | None
    score: int
    scale: int
    reason: str | None
    misuse: bool
    response_ms: int | None
    prompt: str | None
    day: str | None
    hour: int | None


@dataclass(frozen=True)
class PromptFact:
    """One prompt (a patient asked to rate), answered or not, counted once."""

    prompt: str
    device: str
    window: str | None
    staff: str | None
    day: str | None
    hour: int | None
    answered: bool


@dataclass(frozen=True)
class OrphanReason:
    """A reason event whose rating is not in the database (lost, or not arrived yet)."""

    device: str
    window: str | None
    staff: str | None
    reason: str
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
    prompts: int = 0
    prompted: int = 0
    scale: int = 0
    """The largest scale among the group's pads (3, 4 or 5 keys)."""

    def add_rating(self, r: RatingFact) -> None:
        self.count += 1
        self.scale = max(self.scale, r.scale)
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

    def add_prompt(self, p: PromptFact) -> None:
        self.prompts += 1
        if p.answered:
            self.prompted += 1

    @property
    def rated(self) -> int:
        """Ratings that count: `count` without the misuse presses."""
        return self.count - self.misuse

    @property
    def few(self) -> bool:
        return self.rated < FEW_RATINGS

    @property
    def satisfied_pct(self) -> float | None:
        return round(100.0 * self.satisfied / self.rated, 1) if self.rated else None

    @property
    def misuse_pct(self) -> float | None:
        return round(100.0 * self.misuse / self.count, 1) if self.count else None

    @property
    def response_pct(self) -> float | None:
        """评价率: prompts answered by a counted rating, of all prompts."""
        return round(100.0 * self.prompted / self.prompts, 1) if self.prompts else None

    @property
    def median_response_ms(self) -> int | None:
        return int(statistics.median(self.response_ms)) if self.response_ms else None

    @property
    def lowest(self) -> int:
        """Counted ratings at score 1, the worst score of every scale."""
        return self.scores[1]


@dataclass(frozen=True)
class OffsetNote:
    """A device that stamps its events with a UTC offset other than the report's zone."""

    device: str
    events: int
    offsets: tuple[str, ...]
    expected: str


@dataclass(frozen=True)
class ClockNote:
    device: str
    events: int


@dataclass
class Report:
    """Everything a renderer needs."""

    by: str
    groups: list[Group]
    total: Group
    by_hour: list[Group]
    period: tuple[str, str]
    timezone: str
    names: dict[str, str]
    gap_list: list[dict[str, Any]]
    device_list: list[dict[str, Any]]
    offsets: list[OffsetNote]
    unsynced: list[ClockNote]
    orphan_reasons: int

    @property
    def scale(self) -> int:
        """Score columns to show: the largest scale of any pad in the report (4 if none)."""
        return self.total.scale or 4

    def lowest_groups(self) -> tuple[list[Group], list[Group]]:
        """The groups with the lowest satisfied share, and (when those have few ratings) the
        lowest among groups with at least FEW_RATINGS. Ties are all named. Nothing to compare
        (fewer than two groups with counted ratings): two empty lists."""
        if sum(1 for g in self.groups if g.rated) < 2:
            return [], []
        return _lowest([g for g in self.groups if g.rated]), _lowest(
            [g for g in self.groups if g.rated and not g.few]
        )


def _lowest(gs: list[Group]) -> list[Group]:
    if not gs:
        return []
    low = min(g.satisfied_pct or 0.0 for g in gs)
    return [g for g in gs if (g.satisfied_pct or 0.0) == low]


# -- inputs ------------------------------------------------------------------------------------


def parse_day(v: str, flag: str) -> str:
    if not v:
        return ""
    try:
        return date.fromisoformat(v).isoformat()
    except ValueError:
        raise UsageError(f"{flag} {v!r}: use a date like 2026-11-23") from None


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--timezone {name!r}: not an IANA time zone name (e.g. Asia/Shanghai)"
        ) from None


# -- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    id: str
    device: str
    type: str
    ts: str | None
    day: str | None
    hour: int | None
    clock_synced: bool | None
    data: dict[str, Any]


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _event_rows(engine: Engine, day_from: str, day_to: str) -> Iterator[_Row]:
    """Rating, reason and prompt events of the period, one day wider on each side: the stored
    `day` is the device's own, and a reason may follow its rating past midnight."""
    q = select(
        events.c.id,
        events.c.device,
        events.c.type,
        events.c.ts,
        events.c.day,
        events.c.hour,
        events.c.clock_synced,
        events.c.payload,
    ).where(events.c.type.in_(REPORT_TYPES))
    cond = []
    if day_from:
        cond.append(events.c.day >= _shift(day_from, -1))
    if day_to:
        cond.append(events.c.day <= _shift(day_to, 1))
    if cond:
        q = q.where(and_(*cond))
    with engine.connect() as conn:
        for r in conn.execute(q.order_by(events.c.device, events.c.seq, events.c.id)):
            try:
                env = json.loads(r.payload)
            except ValueError:
                continue
            data = env.get("data") if isinstance(env, dict) else None
            if isinstance(data, dict):
                yield _Row(r.id, r.device, r.type, r.ts, r.day, r.hour, r.clock_synced, data)


def _existing_ids(engine: Engine, ids: Iterable[str]) -> set[str]:
    ids = list(ids)
    found: set[str] = set()
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = select(events.c.id).where(events.c.id.in_(ids[i : i + 500]))
            found.update(conn.execute(q).scalars())
    return found


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


def _iso(t: float | None) -> str | None:
    return (
        None if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")
    )


# -- facts -------------------------------------------------------------------------------------


def _text(v: Any, n: int = 200) -> str | None:
    return v[:n] if isinstance(v, str) and v else None


def _offset_text(d: timedelta | None) -> str:
    if d is None:
        return "?"
    mins = int(d.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


@dataclass
class Facts:
    ratings: list[RatingFact]
    prompts: list[PromptFact]
    orphan_reasons: list[OrphanReason]
    offsets: list[OffsetNote]
    unsynced: list[ClockNote]


def load_facts(
    engine: Engine, day_from: str = "", day_to: str = "", zone: tzinfo | None = None
) -> Facts:
    """Ratings, prompts and reasons of the period (inclusive local dates in `zone`)."""
    zone = zone or ZoneInfo(DEFAULT_TIMEZONE)
    bad_offset: dict[str, Counter[str]] = {}
    expected: dict[str, str] = {}
    unsynced: Counter[str] = Counter()

    def in_period(day: str | None) -> bool:
        if day is None:
            return not (day_from or day_to)
        return (not day_from or day >= day_from) and (not day_to or day <= day_to)

    def local(r: _Row) -> tuple[str | None, int | None]:
        """Day and hour in the report's zone: a device set to the wrong zone (UTC) still
        lands in the right hour, because `ts` carries its offset."""
        t = _parse_ts(r.ts)
        if t is None:
            return r.day, r.hour
        here = t.astimezone(zone)
        day = here.date().isoformat()
        if in_period(day):
            if t.utcoffset() != here.utcoffset():
                bad_offset.setdefault(r.device, Counter())[_offset_text(t.utcoffset())] += 1
                expected[r.device] = _offset_text(here.utcoffset())
            if r.clock_synced is False:
                unsynced[r.device] += 1
        return day, here.hour

    reasons: dict[str, str | None] = {}  # rating event id -> reason (the latest event wins)
    reason_rows: list[tuple[_Row, str, str | None, int | None]] = []
    # Prompts are keyed by (device, prompt id): an id is the pad's own.
    closed: dict[tuple[str, str], tuple[_Row, str | None, int | None]] = {}
    rated: list[tuple[_Row, Any, str | None, int | None]] = []
    for r in _event_rows(engine, day_from, day_to):
        day, hour = local(r)
        if r.type == "reason":
            rid = _text(r.data.get("rating"), 64)
            if rid:
                reasons[rid] = _text(r.data.get("reason"))
                reason_rows.append((r, rid, day, hour))
        elif r.type == "prompt":
            pid = _text(r.data.get("prompt"), 64)
            if pid and (r.device, pid) not in closed:
                closed[r.device, pid] = (r, day, hour)
        elif r.type == "rating":
            parsed = parse_rating(r.data)
            if parsed is not None:
                rated.append((r, parsed, day, hour))

    ratings: list[RatingFact] = []
    answers: dict[tuple[str, str], RatingFact] = {}  # prompt -> the counted rating answering it
    misused: dict[tuple[str, str], RatingFact] = {}  # prompt -> a misuse press that carried it
    for r, p, day, hour in rated:
        prompt = _text(r.data.get("prompt"), 64)
        fact = RatingFact(
            id=r.id,
            device=r.device,
            window=p.window,
            staff=p.staff,
            score=p.score,
            scale=p.scale,
            reason=None if p.misuse else reasons.get(r.id, p.reason),
            misuse=p.misuse,
            response_ms=p.response_ms,
            prompt=prompt,
            day=day,
            hour=hour,
        )
        if prompt:
            (misused if p.misuse else answers).setdefault((r.device, prompt), fact)
        if in_period(day):
            ratings.append(fact)

    prompts: list[PromptFact] = []
    for key in sorted(answers.keys() | closed.keys() | misused.keys()):
        # Each prompt once, in the group of the rating that answered it, else of the event
        # that closed it, else of the misuse press that took it.
        pid = key[1]
        if key in answers or key not in closed:
            f = answers.get(key) or misused[key]
            fact = PromptFact(pid, f.device, f.window, f.staff, f.day, f.hour, key in answers)
        else:
            r, day, hour = closed[key]
            window, staff = _text(r.data.get("window"), 64), _text(r.data.get("staff"), 64)
            fact = PromptFact(pid, r.device, window, staff, day, hour, False)
        if in_period(fact.day):
            prompts.append(fact)

    # A reason whose rating never reached the database still counts: it is a complaint.
    missing = {rid for _, rid, _, _ in reason_rows} - {r.id for r, *_ in rated}
    missing -= _existing_ids(engine, missing)  # stored, but outside the period
    orphans: list[OrphanReason] = []
    for r, rid, day, hour in reason_rows:
        text = reasons.get(rid)
        if rid in missing and text and in_period(day):
            missing.discard(rid)
            window, staff = _text(r.data.get("window"), 64), _text(r.data.get("staff"), 64)
            orphans.append(OrphanReason(r.device, window, staff, text, day, hour))
    return Facts(
        ratings,
        prompts,
        orphans,
        [
            OffsetNote(d, sum(c.values()), tuple(sorted(c)), expected[d])
            for d, c in sorted(bad_offset.items())
        ],
        [ClockNote(d, n) for d, n in sorted(unsynced.items())],
    )


def _parse_ts(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


# -- grouping ----------------------------------------------------------------------------------


def key_fn(by: str, windows: dict[str, str]) -> Callable[[Any], Any]:
    """The group key of a rating, prompt or reason (all carry window, staff, day, hour)."""
    if by == "window":
        return lambda r: r.window or UNKNOWN
    if by == "staff":
        return lambda r: r.staff or UNKNOWN
    if by == "department":
        return lambda r: windows.get(r.window or "", UNMAPPED)
    if by == "hour":
        return lambda r: NO_HOUR if r.hour is None else r.hour
    if by == "day":
        return lambda r: r.day or UNKNOWN
    raise UsageError(f"--by {by!r}: use {', '.join(GROUPINGS)}")


def aggregate(facts: Facts, key: Callable[[Any], Any]) -> tuple[list[Group], Group]:
    groups: dict[Any, Group] = {}
    total = Group("total")

    def group(x: Any) -> Group:
        k = key(x)
        return groups.setdefault(k, Group(k))

    for r in facts.ratings:
        group(r).add_rating(r)
        total.add_rating(r)
    for p in facts.prompts:
        group(p).add_prompt(p)
        total.add_prompt(p)
    for o in facts.orphan_reasons:
        group(o).reasons[o.reason] += 1
        total.reasons[o.reason] += 1
    return [groups[k] for k in sorted(groups, key=lambda k: (isinstance(k, str), k))], total


def build_report(
    engine: Engine,
    *,
    by: str,
    day_from: str = "",
    day_to: str = "",
    timezone: str = DEFAULT_TIMEZONE,
    windows: dict[str, str] | None = None,
    names: dict[str, str] | None = None,
    with_delivery: bool = True,
) -> Report:
    if day_from and day_to and day_from > day_to:
        raise UsageError(f"--from {day_from} is after --to {day_to}")
    windows = windows or {}
    facts = load_facts(engine, day_from, day_to, parse_timezone(timezone))
    groups, total = aggregate(facts, key_fn(by, windows))
    by_hour, _ = aggregate(facts, key_fn("hour", windows))
    days = [r.day for r in facts.ratings if r.day]
    return Report(
        by=by,
        groups=groups,
        total=total,
        by_hour=by_hour,
        period=(day_from or min(days, default=""), day_to or max(days, default="")),
        timezone=timezone,
        names=names or {},
        gap_list=gap_rows(engine) if with_delivery else [],
        device_list=device_rows(engine) if with_delivery else [],
        offsets=facts.offsets,
        unsynced=facts.unsynced,
        orphan_reasons=len(facts.orphan_reasons),
    )
