"""The satisfaction figures of the site, from the site database: every query `site report`
makes, the per-group model, and today's figures of the site console (`central.dashboard`
counts through `load_facts` and `aggregate`, so the two never disagree).

The renderers (`central.report_text` for table and CSV, `central.report_html` for the page)
only format what `build_report` returns; nothing here formats text for a reader.

Where the figures come from: the tables the collector fills in the same transaction as
`events` (each event once, by its envelope id; nothing here parses an envelope):
- `ratings`: scores, misuse, response time, the prompt they answer, and the reason: the one
  of the rating's `reason` event (SPEC 9.3) when there is one, else (pads before SPEC 9.3)
  the reason carried in the rating itself;
- `reasons`: `reason` events; one whose rating (of the same device) is not in the database
  still counts as a complaint;
- `prompts`: `prompt` events, a prompt that closed without a rating (expired, superseded);
- `events` (type, day and `clock_synced` only, never the payload): devices whose clock was
  not synchronised.
docs/site.md ("Report") states every definition.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, and_, select
from sqlalchemy.engine import Engine

from central.db import devices, events, gaps, prompts, ratings, reasons
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


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _where(
    table: Table, day_from: str, day_to: str, device_ids: Collection[str] | None
) -> list[Any]:
    """The period one day wider on each side: the stored `day` is the device's own, and the
    report's zone may put an event on the day before or after (the exact cut is made on `ts`)."""
    cond: list[Any] = []
    if day_from:
        cond.append(table.c.day >= _shift(day_from, -1))
    if day_to:
        cond.append(table.c.day <= _shift(day_to, 1))
    if device_ids is not None:
        cond.append(table.c.device.in_(sorted(device_ids)))
    return cond


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


def _offset_text(d: timedelta | None) -> str:
    if d is None:
        return "?"
    mins = int(d.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


@dataclass
class Facts:
    """What the figures are made of, for one period. Every fact belongs to one device, so the
    facts of a set of devices are those devices' facts put together (`split`, `join`)."""

    ratings: list[RatingFact] = field(default_factory=list)
    prompts: list[PromptFact] = field(default_factory=list)
    orphan_reasons: list[OrphanReason] = field(default_factory=list)
    offsets: list[OffsetNote] = field(default_factory=list)
    unsynced: list[ClockNote] = field(default_factory=list)

    def split(self) -> dict[str, Facts]:
        out: dict[str, Facts] = {}
        for name in ("ratings", "prompts", "orphan_reasons", "offsets", "unsynced"):
            for f in getattr(self, name):
                getattr(out.setdefault(f.device, Facts()), name).append(f)
        return out

    @staticmethod
    def join(parts: Iterable[Facts]) -> Facts:
        out = Facts()
        for p in parts:
            out.ratings += p.ratings
            out.prompts += p.prompts
            out.orphan_reasons += p.orphan_reasons
            out.offsets += p.offsets
            out.unsynced += p.unsynced
        out.offsets.sort(key=lambda o: o.device)
        out.unsynced.sort(key=lambda c: c.device)
        return out


class _Clock:
    """Day and hour in the report's zone, and the notes on devices whose time looks wrong."""

    def __init__(self, zone: tzinfo, day_from: str, day_to: str) -> None:
        self.zone = zone
        self.day_from, self.day_to = day_from, day_to
        self.bad_offset: dict[str, Counter[str]] = {}
        self.expected: dict[str, str] = {}
        self._seen: dict[str, tuple[Any, ...]] = {}

    def in_period(self, day: str | None) -> bool:
        if day is None:
            return not (self.day_from or self.day_to)
        return (not self.day_from or day >= self.day_from) and (
            not self.day_to or day <= self.day_to
        )

    def local(
        self, device: str, ts: str | None, day: str | None, hour: int | None
    ) -> tuple[str | None, int | None]:
        """A device set to the wrong zone (UTC) still lands in the right hour, because `ts`
        carries its offset; such devices are noted when the event is in the period."""
        # With whole-hour offsets on both sides, day and hour depend only on the stamped date,
        # hour and offset: a month of ratings has a few hundred of those, each worked out once.
        whole_hours = ts and len(ts) >= 25 and ts[-6] in "+-" and ts.endswith(":00")
        key = ts[:13] + ts[-6:] if whole_hours else None
        hit = self._seen.get(key) if key else None
        if hit is None:
            hit = self._convert(ts)
            if key and hit[4]:
                self._seen[key] = hit
        if hit[0] is None:
            return day, hour
        if hit[2] is not None and self.in_period(hit[0]):
            self.bad_offset.setdefault(device, Counter())[hit[2]] += 1
            self.expected[device] = hit[3]
        return hit[0], hit[1]

    def _convert(self, ts: str | None) -> tuple[Any, ...]:
        """(day, hour, the stamped offset when it is not the zone's, the zone's offset, whether
        the zone's offset is whole hours here)."""
        t = _parse_ts(ts)
        if t is None:
            return (None, None, None, None, False)
        try:
            here = t.astimezone(self.zone)
        except (OverflowError, ValueError):  # year 1 at +14:00: no day in this zone
            return (None, None, None, None, False)
        offset = here.utcoffset()
        bad = t.utcoffset() != offset
        return (
            here.date().isoformat(),
            here.hour,
            _offset_text(t.utcoffset()) if bad else None,
            _offset_text(offset),
            offset is not None and offset.total_seconds() % 3600 == 0,
        )

    def offset_notes(self) -> list[OffsetNote]:
        return [
            OffsetNote(d, sum(c.values()), tuple(sorted(c)), self.expected[d])
            for d, c in sorted(self.bad_offset.items())
        ]


def _first(found: dict[Any, tuple[Any, ...]], key: Any, order: tuple[Any, ...], item: Any) -> None:
    """Keep, per key, the item that comes first by `order` (the same on every database)."""
    old = found.get(key)
    if old is None or order < old[0]:
        found[key] = (order, item)


def load_facts(
    engine: Engine,
    day_from: str = "",
    day_to: str = "",
    zone: tzinfo | None = None,
    device_ids: Collection[str] | None = None,
) -> Facts:
    """Ratings, prompts and reasons of the period (inclusive local dates in `zone`), of every
    device or only of `device_ids`, from the collector's tables `ratings`, `prompts` and
    `reasons` (filled in the same transaction as `events`; the reason of a rating is already
    joined to it there)."""
    clock = _Clock(zone or ZoneInfo(DEFAULT_TIMEZONE), day_from, day_to)
    r, p, q = ratings.c, prompts.c, reasons.c
    q_ratings = select(
        r.event_id,
        r.device,
        r.window,
        r.staff,
        r.score,
        r.scale,
        r.reason,
        r.misuse,
        r.response_ms,
        r.prompt,
        r.ts,
        r.day,
        r.hour,
    ).where(*_where(ratings, day_from, day_to, device_ids))
    q_prompts = select(
        p.event_id, p.prompt, p.device, p.window, p.staff, p.ts, p.day, p.hour
    ).where(*_where(prompts, day_from, day_to, device_ids))
    # Every reason of the period, and whether its rating is in the database: one that is not
    # (lost, or not arrived yet) still counts, as a complaint. Only a rating of the same device
    # is the reason's own (the collector joins them so too).
    q_reasons = (
        select(
            q.event_id,
            q.rating,
            q.device,
            q.window,
            q.staff,
            q.reason,
            q.ts,
            q.day,
            q.hour,
            r.event_id.label("found"),
        )
        .select_from(reasons.outerjoin(ratings, and_(r.event_id == q.rating, r.device == q.device)))
        .where(*_where(reasons, day_from, day_to, device_ids))
    )
    e = events.c
    q_unsynced = select(e.device, e.ts, e.day, e.hour).where(
        e.type.in_(REPORT_TYPES),
        e.clock_synced.is_(False),
        *_where(events, day_from, day_to, device_ids),
    )
    with engine.connect() as conn:
        rating_rows = conn.execute(q_ratings).all()
        prompt_rows = conn.execute(q_prompts).all()
        reason_rows = conn.execute(q_reasons).all()
        unsynced_rows = conn.execute(q_unsynced).all()

    in_period, local = clock.in_period, clock.local
    facts = Facts()
    # The last `reason` event of each rating (by time, then id) is its reason. The collector
    # has already joined it to the rating (`ratings.reason`) in whichever order they came;
    # taking it again here keeps "the reason event wins" true even for a rating that arrived
    # after its reason without `reason_asked`.
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in reason_rows:
        day, hour = local(row.device, row.ts, row.day, row.hour)
        order = (row.ts or "", row.event_id)
        old = latest.get((row.device, row.rating))
        if old is None or order > old[0]:
            latest[(row.device, row.rating)] = (order, row, day, hour)
    said = {k: v[1].reason for k, v in latest.items() if v[1].found is not None}
    for _, row, day, hour in sorted(latest.values(), key=lambda x: x[0]):
        if row.found is None and row.reason and in_period(day):  # its rating is not here
            facts.orphan_reasons.append(
                OrphanReason(row.device, row.window, row.staff, row.reason, day, hour)
            )

    # Prompts are keyed by (device, prompt id): an id is the pad's own.
    answers: dict[tuple[str, str], tuple[Any, ...]] = {}  # the counted rating answering it
    misused: dict[tuple[str, str], tuple[Any, ...]] = {}  # a misuse press that carried it
    for (
        rid,
        device,
        window,
        staff,
        score,
        scale,
        reason,
        misuse,
        ms,
        prompt,
        ts,
        *dh,
    ) in rating_rows:
        day, hour = local(device, ts, *dh)
        fact = RatingFact(
            rid,
            device,
            window,
            staff,
            score,
            scale,
            None if misuse else said.get((device, rid), reason),
            misuse,
            ms,
            prompt,
            day,
            hour,
        )
        if prompt:
            _first(misused if misuse else answers, (device, prompt), (ts or "", rid), fact)
        if in_period(day):
            facts.ratings.append(fact)

    closed: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in prompt_rows:
        day, hour = local(row.device, row.ts, row.day, row.hour)
        fact = PromptFact(row.prompt, row.device, row.window, row.staff, day, hour, False)
        _first(closed, (row.device, row.prompt), (row.ts or "", row.event_id), fact)

    for key in answers.keys() | closed.keys() | misused.keys():
        # Each prompt once, in the group of the rating that answered it, else of the event
        # that closed it, else of the misuse press that took it.
        if key in answers or key not in closed:
            f: RatingFact = (answers.get(key) or misused[key])[1]
            pf = PromptFact(key[1], f.device, f.window, f.staff, f.day, f.hour, key in answers)
        else:
            pf = closed[key][1]
        if in_period(pf.day):
            facts.prompts.append(pf)

    unsynced: Counter[str] = Counter()
    for row in unsynced_rows:
        t = _parse_ts(row.ts)
        day = t.astimezone(clock.zone).date().isoformat() if t is not None else row.day
        if in_period(day):
            unsynced[row.device] += 1
    facts.offsets = clock.offset_notes()
    facts.unsynced = [ClockNote(d, n) for d, n in sorted(unsynced.items())]
    return facts


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
        g = groups.get(k)
        if g is None:  # not setdefault: a Group per rating would double the report's time
            g = groups[k] = Group(k)
        return g

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
