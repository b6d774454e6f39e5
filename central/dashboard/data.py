"""What the site console shows, read from the site database: device health, alerts with their
acknowledgements, and today's satisfaction and response rate (through `central.report_model`)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from central.db import alert_acks, devices, events, gaps, insert_ignore, reasons, telemetry
from central.report_model import (
    DEFAULT_TIMEZONE,
    UNKNOWN,
    Facts,
    Group,
    aggregate,
    key_fn,
    load_facts,
)

OPEN_ALERTS_MAX = 200  # newest open alerts listed (the count is exact)
ACKED_SHOWN = 30  # acknowledged alerts of today kept in view, newest first
RECHECK_S = 60.0  # alerts and every device's figures are read again at least this often
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
BAD_DRIVER_STATES = ("error", "absent")


@dataclass
class Thresholds:
    backlog_s: float = 600.0  # oldest unsent event older than this (SPEC 5: outbox_backlog)
    silent_s: float = 300.0  # an online device not heard from (event or telemetry) this long
    skew_s: float = 60.0  # device clock this far from the collector's
    cert_days: int = 30  # device certificate expiring within this many days


@dataclass
class DeviceView:
    device: str
    site: str
    role: str | None
    version: str | None
    state: str  # online | offline | unknown
    reason: str | None  # shutdown | lost (offline)
    since: float | None  # Unix time the current state began
    last_event: float | None  # Unix time (collector clock) of the last event received
    max_seq: int
    open_gaps: int
    telemetry_at: float | None
    outbox_depth: int | None
    oldest_pending_s: float | None
    printer: str | None
    card_reader: str | None
    buttons: str | None
    clock_synced: bool | None
    clock_skew_s: float | None  # device clock minus collector clock, from the last telemetry
    details: dict[str, str] = field(default_factory=dict)  # part -> what is wrong, as sent
    cert_days_left: int | None = None
    problems: list[str] = field(default_factory=list)
    level: str = "ok"  # ok | warning | critical


@dataclass
class AlertView:
    id: str
    device: str
    site: str
    kind: str
    severity: str
    message: str
    at: float  # when it happened: the device's time if readable, else receipt
    window: str | None
    staff: str | None
    staff_name: str | None
    score: int | None
    label: str | None
    reason: str | None
    acked_by: str | None
    acked_at: float | None


@dataclass
class FigureRow:
    key: str
    name: str | None
    rated: int
    satisfied_pct: float | None
    low: int
    misuse: int
    scores: dict[int, int]
    median_response_ms: int | None
    prompts: int
    prompted: int
    response_pct: float | None


@dataclass
class Snapshot:
    day: str
    generated_at: float
    devices: list[DeviceView]
    open_alerts: int
    alerts: list[AlertView]
    scale: int
    windows: list[FigureRow]
    staff: list[FigureRow]
    total: FigureRow
    error: str | None = None

    @property
    def online(self) -> int:
        return sum(d.state == "online" for d in self.devices)

    @property
    def offline(self) -> list[DeviceView]:
        return [d for d in self.devices if d.state == "offline"]

    @property
    def unacked(self) -> list[AlertView]:
        return [a for a in self.alerts if a.acked_by is None]

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"online": self.online}

    def version(self) -> str:
        """Changes exactly when something shown changes (not with the time of the poll)."""
        body = self.as_json()
        body.pop("generated_at")
        text = json.dumps(body, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _unix(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.timestamp() if t.tzinfo is not None else None


def _part(v: Any) -> tuple[str | None, str | None]:
    """A part's state from telemetry: `"ok"`, or `{"state": "error", "detail": "paper out"}`."""
    if isinstance(v, str) and v:
        return v[:32], None
    if isinstance(v, dict) and isinstance(v.get("state"), str):
        detail = v.get("detail")
        return v["state"][:32], detail[:200] if isinstance(detail, str) and detail else None
    return None, None


def _data(payload: str) -> dict[str, Any]:
    try:
        d = json.loads(payload).get("data")
    except (ValueError, AttributeError):
        return {}
    return d if isinstance(d, dict) else {}


def _text(d: dict[str, Any], k: str, n: int = 200) -> str | None:
    v = d.get(k)
    return v[:n] if isinstance(v, str) and v else None


def _int(d: dict[str, Any], k: str) -> int | None:
    v = d.get(k)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class ConsoleData:
    """Reads one `Snapshot` at a time; `acknowledge` is the only write.

    Today's figures are those of `site report --from today --to today` in the same time zone
    (`central.report_model` counts both). They are kept per device between polls: a poll
    re-reads the ratings, prompts and reasons of the devices that stored an event since the
    last one (`devices.last_event_at`, written in the collector's transaction), and nothing
    when none did; every device again when the day turns and once every RECHECK_S."""

    def __init__(
        self,
        engine: Engine,
        *,
        tz: tzinfo | None = None,
        staff_names: dict[str, str] | None = None,
        alert_days: int = 7,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.engine = engine
        self.tz = tz or ZoneInfo(DEFAULT_TIMEZONE)
        self.staff_names = staff_names or {}
        self.alert_days = alert_days
        self.limits = thresholds or Thresholds()
        self._day = ""
        self._read_all_at = float("-inf")
        self._marks: dict[str, float | None] = {}  # device -> last_event_at when last read
        self._acks: tuple[Any, ...] | None = None
        self._facts: dict[str, Facts] = {}  # device -> today's facts
        self._figures: tuple[int, list[FigureRow], list[FigureRow], FigureRow] | None = None
        self._alerts: tuple[int, list[AlertView]] | None = None

    def today(self, now: float | None = None) -> date:
        return datetime.fromtimestamp(time.time() if now is None else now, self.tz).date()

    def snapshot(self, now: float | None = None) -> Snapshot:
        now = time.time() if now is None else now
        day = self.today(now)
        devs = self.devices(now)  # first: an event stored after this read is seen next poll
        marks = {d.device: d.last_event for d in devs}
        acks = self._ack_marker()
        every = day.isoformat() != self._day or now - self._read_all_at >= RECHECK_S
        changed = set(marks) if every else {d for d, t in marks.items() if self._marks.get(d) != t}
        if every or changed or self._figures is None:
            self._read_facts(day.isoformat(), None if every else changed)
            self._figures = self.figures_of(Facts.join(self._facts.values()))
        if every or changed or acks != self._acks or self._alerts is None:
            self._alerts = self.alerts(now, day)
        # Only now, when everything was read: a failed read is tried again next poll.
        self._day, self._marks, self._acks = day.isoformat(), marks, acks
        if every:
            self._read_all_at = now
        (open_count, alerts), (scale, windows, staff, total) = self._alerts, self._figures
        return Snapshot(
            day.isoformat(), now, devs, open_count, alerts, scale, windows, staff, total
        )

    def _ack_marker(self) -> tuple[Any, ...]:
        with self.engine.connect() as conn:
            return tuple(
                conn.execute(
                    select(func.count(), func.max(alert_acks.c.acked_at)).select_from(alert_acks)
                ).one()
            )

    def _read_facts(self, day: str, device_ids: set[str] | None) -> None:
        """Today's facts of `device_ids` (None: of every device) replace the ones kept."""
        fresh = load_facts(self.engine, day, day, self.tz, device_ids).split()
        if device_ids is None:
            self._facts = fresh
            return
        for d in device_ids:
            if d in fresh:
                self._facts[d] = fresh[d]
            else:
                self._facts.pop(d, None)

    # -- devices --------------------------------------------------------------------------

    def devices(self, now: float) -> list[DeviceView]:
        t = telemetry.c
        q = select(
            *devices.c,
            t.received_at.label("telemetry_at"),
            t.ts.label("telemetry_ts"),
            t.outbox_depth,
            t.oldest_pending_s,
            t.printer,
            t.card_reader,
            t.buttons,
            t.clock_synced,
            t.cert_days_left,
        ).select_from(devices.outerjoin(telemetry, t.device == devices.c.device))
        gq = (
            select(gaps.c.device, func.count())
            .where(gaps.c.state == "open")
            .group_by(gaps.c.device)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            open_gaps = {dev: n for dev, n in conn.execute(gq)}
        out = [self._device(r, open_gaps.get(r["device"], 0), now) for r in rows]
        rank = {"critical": 0, "warning": 1, "ok": 2}
        out.sort(key=lambda d: (rank[d.level], d.site, d.device))
        return out

    def _device(self, r: Any, open_gaps: int, now: float) -> DeviceView:
        state = r["state"] or "unknown"
        since = r["state_since"]  # the collector's clock when the state last changed
        if since is None and r["reason"] != "lost":
            since = _unix(r["status_ts"])  # a Will's own ts is its connect time: never that
        skew = None
        told = _unix(r["telemetry_ts"])
        if told is not None and r["telemetry_at"] is not None:
            skew = round(told - r["telemetry_at"], 1)
        parts = {k: _part(r[k]) for k in ("printer", "card_reader", "buttons")}
        cert = r["cert_days_left"]
        d = DeviceView(
            device=r["device"],
            site=r["site"],
            role=r["role"],
            version=r["version"],
            state=state,
            reason=r["reason"] if state == "offline" else None,
            since=since,
            last_event=r["last_event_at"],
            max_seq=r["max_seq"] or 0,
            open_gaps=open_gaps,
            telemetry_at=r["telemetry_at"],
            outbox_depth=r["outbox_depth"],
            oldest_pending_s=r["oldest_pending_s"],
            printer=parts["printer"][0],
            card_reader=parts["card_reader"][0],
            buttons=parts["buttons"][0],
            clock_synced=r["clock_synced"],
            clock_skew_s=skew,
            details={k: why for k, (_, why) in parts.items() if why},
            cert_days_left=cert if isinstance(cert, int) else None,
        )
        lim = self.limits
        problems = []
        if state == "offline":
            problems.append("offline")
        for part in ("printer", "card_reader", "buttons"):
            if getattr(d, part) in BAD_DRIVER_STATES:
                problems.append(part)
        if (d.oldest_pending_s or 0) > lim.backlog_s:
            problems.append("backlog")
        if d.clock_synced is False:
            problems.append("clock")
        if skew is not None and abs(skew) > lim.skew_s:
            problems.append("skew")
        heard = max(d.telemetry_at or 0, r["last_seen"] or 0)
        if state == "online" and heard and now - heard > lim.silent_s:
            problems.append("silent")
        if d.cert_days_left is not None and d.cert_days_left < lim.cert_days:
            problems.append("cert")
        if open_gaps:
            problems.append("gaps")
        d.problems = problems
        d.level = "critical" if state == "offline" else "warning" if problems else "ok"
        return d

    # -- alerts ---------------------------------------------------------------------------

    def alerts(self, now: float, day: date) -> tuple[int, list[AlertView]]:
        since_day = (day - timedelta(days=self.alert_days - 1)).isoformat()
        day_start = datetime.combine(day, datetime.min.time(), self.tz).timestamp()
        joined = events.outerjoin(alert_acks, alert_acks.c.event_id == events.c.id)
        cols = (
            events.c.id,
            events.c.device,
            events.c.site,
            events.c.epoch,
            events.c.seq,
            events.c.kind,
            events.c.ts,
            events.c.received_at,
            events.c.payload,
            alert_acks.c.acked_by,
            alert_acks.c.acked_at,
        )
        is_open = and_(
            events.c.type == "alert", events.c.day >= since_day, alert_acks.c.event_id.is_(None)
        )
        q_open = (
            select(*cols)
            .select_from(joined)
            .where(is_open)
            .order_by(events.c.received_at.desc())
            .limit(OPEN_ALERTS_MAX)
        )
        q_count = select(func.count()).select_from(joined).where(is_open)
        q_acked = (
            select(*cols)
            .select_from(alert_acks.join(events, alert_acks.c.event_id == events.c.id))
            .where(alert_acks.c.acked_at >= day_start)
            .order_by(alert_acks.c.acked_at.desc())
            .limit(ACKED_SHOWN)
        )
        with self.engine.connect() as conn:
            open_rows = conn.execute(q_open).all()
            count = conn.execute(q_count).scalar_one()
            acked_rows = conn.execute(q_acked).all()
            found = self._reasons(conn, open_rows + acked_rows)
        views = [self._alert(r, found) for r in open_rows + acked_rows]
        views.sort(
            key=lambda a: (
                a.acked_by is not None,
                SEVERITY_ORDER.get(a.severity, 3) if a.acked_by is None else 0,
                -(a.acked_at or a.at) if a.acked_by else -a.at,
            )
        )
        return count, views

    def _reasons(self, conn: Any, rows: list[Any]) -> dict[str, str]:
        """alert id -> the reason its rating got later in a `reason` event (SPEC 9.3)."""
        wanted: dict[str, str] = {}  # rating event id -> alert id
        by_seq: dict[tuple[str, str, int], tuple[str, dict[str, Any]]] = {}
        for r in rows:
            d = _data(r.payload)
            if r.kind != "dissatisfied" or d.get("reason") or _int(d, "score") is None:
                continue
            if isinstance(d.get("rating"), str):
                wanted[d["rating"]] = r.id
            elif r.seq is not None:
                # The pad stores the rating, then its alert: the event just before it.
                by_seq[(r.device, r.epoch, r.seq - 1)] = (r.id, d)
        if by_seq:
            e = events.c
            q = select(e.id, e.device, e.epoch, e.seq, e.payload).where(
                and_(
                    e.type == "rating",
                    e.device.in_({k[0] for k in by_seq}),
                    e.seq.in_({k[2] for k in by_seq}),
                )
            )
            for rid, dev, epoch, seq, payload in conn.execute(q):
                hit = by_seq.get((dev, epoch, seq))
                rd = _data(payload)
                if hit and (rd.get("window"), rd.get("score")) == (
                    hit[1].get("window"),
                    hit[1].get("score"),
                ):
                    wanted[rid] = hit[0]
        if not wanted:
            return {}
        q = select(reasons.c.rating, reasons.c.reason).where(reasons.c.rating.in_(list(wanted)))
        return {wanted[rating]: reason for rating, reason in conn.execute(q) if reason}

    def _alert(self, r: Any, found: dict[str, str]) -> AlertView:
        d = _data(r.payload)
        staff = _text(d, "staff", 64)
        return AlertView(
            id=r.id,
            device=r.device,
            site=r.site,
            kind=r.kind or _text(d, "kind", 32) or "alert",
            severity=_text(d, "severity", 16) or "warning",
            message=_text(d, "message", 300) or "",
            at=_unix(r.ts) or r.received_at,
            window=_text(d, "window", 64),
            staff=staff,
            staff_name=self.staff_names.get(staff) if staff else None,
            score=_int(d, "score"),
            label=_text(d, "label", 64),
            reason=_text(d, "reason", 200) or found.get(r.id),
            acked_by=r.acked_by,
            acked_at=r.acked_at,
        )

    def acknowledge(
        self, event_id: str, user: str, now: float | None = None
    ) -> tuple[str, float] | None:
        """Record who acknowledged an alert; the first acknowledgement stays. Returns the stored
        (user, time), or None when there is no such alert."""
        with self.engine.begin() as conn:
            found = conn.execute(
                select(events.c.id).where(and_(events.c.id == event_id, events.c.type == "alert"))
            ).first()
            if found is None:
                return None
            conn.execute(
                insert_ignore(self.engine, alert_acks),
                {
                    "event_id": event_id,
                    "acked_by": user,
                    "acked_at": time.time() if now is None else now,
                },
            )
            row = conn.execute(
                select(alert_acks.c.acked_by, alert_acks.c.acked_at).where(
                    alert_acks.c.event_id == event_id
                )
            ).one()
        return row.acked_by, row.acked_at

    # -- today's figures (central.report_model does the counting) -------------------------

    def figures(self, day: str) -> tuple[int, list[FigureRow], list[FigureRow], FigureRow]:
        """The day's figures per window and per clerk, read afresh (nothing kept)."""
        return self.figures_of(load_facts(self.engine, day, day, self.tz))

    def figures_of(self, facts: Facts) -> tuple[int, list[FigureRow], list[FigureRow], FigureRow]:
        out = []
        total = Group("total")
        for by in ("window", "staff"):
            groups, total = aggregate(facts, key_fn(by, {}))
            groups.sort(key=lambda g: (g.key == UNKNOWN, str(g.key)))
            names = self.staff_names if by == "staff" else {}
            out.append([_figure(g, names.get(str(g.key))) for g in groups])
        return total.scale or 4, out[0], out[1], _figure(total, None)


def _figure(g: Group, name: str | None) -> FigureRow:
    return FigureRow(
        key=str(g.key),
        name=name,
        rated=g.rated,
        satisfied_pct=g.satisfied_pct,
        low=g.lowest,
        misuse=g.misuse,
        scores={i: g.scores[i] for i in range(1, 6)},
        median_response_ms=g.median_response_ms,
        prompts=g.prompts,
        prompted=g.prompted,
        response_pct=g.response_pct,
    )
