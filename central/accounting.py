"""The collector's bookkeeping in the database: store events once, account for every seq of
every outbox epoch, publish acks, chase gaps, keep device status and telemetry.

Everything a collector knows lives in the database, so several collectors of one
shared-subscription group (each with its own `Accounting`) act on the same state. A batch
is one transaction. Locks are always taken in one order, so two collectors never deadlock:
event ids (sorted), then device rows (sorted, `SELECT ... FOR UPDATE` on PostgreSQL), and
everything else of a device (its streams, gaps, alerts, telemetry) only under its device
row's lock; the timers (`tick`) lock device rows in the same sorted order. A deadlock or
serialization failure that happens anyway is retried as a whole, and nothing is counted
before the commit.

The owner passes `send(topic, body, retain) -> bool` to publish acks and commands (called
only after a commit), calls `store_batch` for each batch, and `tick` once a second.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from central import ledger
from central.db import (
    NO_EPOCH,
    alert_deliveries,
    devices,
    events,
    gaps,
    insert_ignore,
    is_retryable,
    prompts,
    ratings,
    reasons,
    sessions,
    streams,
    telemetry,
    upsert,
)
from central.messages import Event, Reply, Status, Telemetry, clean, envelope_text, rating_of
from terminal import payloads
from terminal.backoff import Backoff
from terminal.topics import Topics

log = logging.getLogger("careterm.collect")

RESEND_BACKOFF_MAX_S = 600.0
MAX_RESEND_SPAN = 1_000_000  # devices refuse larger `resend` ranges
CID_RESEND, CID_PING = "site-resend-", "site-ping-"
RETRIES = 8

Send = Callable[[str, dict[str, Any], bool], bool]
StreamKey = tuple[str, str]  # (device, epoch); epoch '' for version-1 devices


@dataclass
class Batch:
    """Messages received since the last commit."""

    events: list[Event] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    telemetry: list[Telemetry] = field(default_factory=list)
    mids: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos) to PUBACK after commit
    rejected: int = 0

    def __len__(self) -> int:
        return (
            len(self.events)
            + len(self.statuses)
            + len(self.replies)
            + len(self.telemetry)
            + self.rejected
        )

    def __add__(self, other: Batch) -> Batch:
        return Batch(
            self.events + other.events,
            self.statuses + other.statuses,
            self.replies + other.replies,
            self.telemetry + other.telemetry,
            self.mids + other.mids,
            other.rejected,
        )


@dataclass
class _Outcome:
    """What one committed transaction did; applied to the counters only after the commit."""

    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    acks: list[tuple[str, str, str, int]] = field(default_factory=list)  # site, device, epoch, seq
    commands: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    logs: list[tuple[int, str]] = field(default_factory=list)  # logged after the commit


class Accounting:
    def __init__(
        self,
        engine: Engine,
        send: Send,
        *,
        topic_root: str = "careterm",
        gap_timeout_s: float = 60.0,
        ping_interval_s: float = 300.0,
    ) -> None:
        self.engine = engine
        self.send = send
        self.topic_root = topic_root
        self.gap_timeout_s = gap_timeout_s
        self.ping_interval_s = ping_interval_s
        self.pg = engine.dialect.name == "postgresql"
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.retries = 0
        self.acked_here: dict[StreamKey, int] = {}  # acks published over the current connection
        self.republish = True  # publish every current ack again (after a reconnect)

    # -- committing a batch ---------------------------------------------------------------

    def store_batch(self, batch: Batch) -> set[str]:
        """Commit the batch, then publish the acks and commands it calls for; returns the
        devices it touched. Raises OperationalError when the database is unreachable
        (nothing is lost: the caller keeps the batch and tries again)."""
        try:
            out = self._transaction(lambda conn: self._store(conn, batch))
        except OperationalError:
            raise
        except Exception as e:  # something in the batch the database refuses: find it
            log.error(
                "collect: the database refused a batch (%s); storing its messages one by one",
                str(e).splitlines()[0],
            )
            out = self._store_one_by_one(batch)
        self._after_commit(out)
        return {e.device for e in batch.events} | {s.device for s in batch.statuses}

    def _transaction(self, work: Callable[[Connection], _Outcome]) -> _Outcome:
        backoff = Backoff(first=0.02, cap=1.0)
        for attempt in range(RETRIES):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except OperationalError as e:
                if not is_retryable(e) or attempt == RETRIES - 1:
                    raise
                self.retries += 1
                log.warning(
                    "collect: transaction rolled back (%s); running it again",
                    str(e.orig).splitlines()[0],
                )
                time.sleep(backoff.next())
        raise AssertionError("unreachable")

    def _store_one_by_one(self, batch: Batch) -> _Outcome:
        total = _Outcome()
        singles = (
            [Batch(events=[e]) for e in batch.events]
            + [Batch(statuses=[s]) for s in batch.statuses]
            + [Batch(replies=[r]) for r in batch.replies]
            + [Batch(telemetry=[t]) for t in batch.telemetry]
        )
        for one in singles:
            try:
                out = self._transaction(lambda conn, one=one: self._store(conn, one))
            except OperationalError:
                raise
            except Exception as e:
                total.dropped += 1
                what = one.events[0].id if one.events else "a status, reply or telemetry"
                log.error(
                    "collect: dropped %s: the database refuses it (%s)",
                    what,
                    str(e).splitlines()[0],
                )
                continue
            total.stored += out.stored
            total.duplicates += out.duplicates
            total.acks += out.acks
            total.commands += out.commands
            total.logs += out.logs
        return total

    def _after_commit(self, out: _Outcome) -> None:
        self.stored += out.stored
        self.duplicates += out.duplicates
        self.rejected += out.dropped
        for level, msg in out.logs:
            log.log(level, "collect: %s", msg)
        for site, dev, epoch, seq in out.acks:
            self._publish_ack(site, dev, epoch, seq)
        for site, dev, name, body in out.commands:
            self.send(Topics(self.topic_root, site, dev).command(name), body, False)

    def _publish_ack(self, site: str, dev: str, epoch: str, seq: int) -> None:
        body: dict[str, Any] = {"seq": seq}
        if epoch != NO_EPOCH:
            body["epoch"] = epoch
        if self.acked_here.get((dev, epoch)) == seq:
            return
        if self.send(Topics(self.topic_root, site, dev).ack, body, True):
            self.acked_here[(dev, epoch)] = seq
        else:
            self.republish = True

    # -- one transaction ------------------------------------------------------------------

    def _store(self, conn: Connection, batch: Batch) -> _Outcome:
        out = _Outcome()
        now = time.time()
        new = self._insert_events(conn, batch.events, now, out)
        dev_rows = self._lock_devices(conn, batch, now)
        self._insert_details(conn, new, dev_rows)
        dirty = self._streams(conn, new, dev_rows, now, out)
        for st in batch.statuses:
            self._apply_status(conn, st, dev_rows[st.device], now)
        for rp in batch.replies:
            if rp.device in dev_rows:
                dirty |= self._apply_reply(conn, rp, dev_rows[rp.device], now, out)
        for key in sorted(dirty):
            self._account(conn, key, dev_rows[key[0]], now, out)
        self._queue_alerts(conn, new, dev_rows, now)
        self._telemetry(conn, batch.telemetry, now)
        for ev in batch.events:
            d = dev_rows[ev.device]
            d["last_seen"] = now
        for ev in new:
            dev_rows[ev.device]["last_event_at"] = now
        for tm in batch.telemetry:
            dev_rows[tm.device]["last_seen"] = now
        self._write_devices(conn, dev_rows)
        return out

    def _insert_events(
        self, conn: Connection, evs: list[Event], now: float, out: _Outcome
    ) -> list[Event]:
        """Insert the batch's events (sorted by id: every collector takes these locks in the
        same order); returns the events that were new."""
        unique = {}
        for ev in evs:
            unique.setdefault(ev.id, ev)
        ordered = [unique[k] for k in sorted(unique)]
        if not ordered:
            return []
        rows = [
            {
                "id": ev.id,
                "device": ev.device,
                "site": ev.site,
                "epoch": ev.epoch or NO_EPOCH,
                "seq": ev.seq,
                "type": ev.type,
                "kind": clean(ev.kind) if ev.kind else None,
                "ts": ev.ts,
                "day": ev.day,
                "hour": ev.hour,
                "clock_synced": ev.clock_synced,
                "valid": ev.data_error is None,
                "received_at": now,
                "topic": ev.topic[:255],
                "payload": envelope_text(ev.envelope),
            }
            for ev in ordered
        ]
        stmt = insert_ignore(conn, events).returning(events.c.id)
        fresh = {r[0] for r in conn.execute(stmt, rows)}
        new = [ev for ev in ordered if ev.id in fresh]
        out.stored += len(new)
        out.duplicates += len(evs) - len(new)
        for ev in new:
            if ev.data_error:
                out.logs.append(
                    (
                        logging.WARNING,
                        f"{ev.device}: {ev.type} {ev.id} stored, but its data is not a valid "
                        f"{ev.type} ({ev.data_error}); reports leave it out",
                    )
                )
        return new

    def _lock_devices(self, conn: Connection, batch: Batch, now: float) -> dict[str, dict]:
        """The device rows this batch touches, created if new and locked (sorted)."""
        sites: dict[str, str] = {}
        for m in (*batch.events, *batch.statuses, *batch.telemetry):
            sites.setdefault(m.device, m.site)
        wanted = set(sites) | {r.device for r in batch.replies}
        if not wanted:
            return {}
        if sites:
            conn.execute(
                insert_ignore(conn, devices),
                [
                    {
                        "device": d,
                        "site": sites[d],
                        "acked_seq": 0,
                        "max_seq": 0,
                        "session": 0,
                        "alerts_stored": 0,
                    }
                    for d in sorted(sites)
                ],
            )
        q = select(devices).where(devices.c.device.in_(sorted(wanted))).order_by(devices.c.device)
        if self.pg:
            q = q.with_for_update()
        return {r.device: dict(r._mapping) for r in conn.execute(q)}

    def _write_devices(self, conn: Connection, rows: dict[str, dict]) -> None:
        if not rows:
            return
        cols = [c.name for c in devices.columns if c.name != "device"]
        stmt = (
            update(devices)
            .where(devices.c.device == bindparam("k_device"))
            .values({c: bindparam(f"v_{c}") for c in cols})
        )
        conn.execute(
            stmt,
            [
                {"k_device": d, **{f"v_{c}": rows[d][c] for c in cols}}
                for d in sorted(rows)  # the order every transaction locks them in
            ],
        )

    # -- ratings, reasons, prompts, alerts -------------------------------------------------

    def _insert_details(self, conn: Connection, new: list[Event], dev_rows: dict) -> None:
        rating_rows, reason_rows, prompt_rows = [], [], []
        answers: dict[tuple[str, str], str | None] = {}
        for ev in new:
            m = ev.model
            if isinstance(m, payloads.ReasonData):
                row = {
                    "event_id": ev.id,
                    "rating": m.rating,
                    "device": ev.device,
                    "site": ev.site,
                    "window": clean(m.window),
                    "staff": clean(m.staff) if m.staff else None,
                    "reason": clean(m.reason) if m.reason else None,
                    "ts": ev.ts,
                    "day": ev.day,
                    "hour": ev.hour,
                }
                reason_rows.append(row)
                answers[(ev.device, m.rating)] = row["reason"]
            elif isinstance(m, payloads.PromptData):
                prompt_rows.append(
                    {
                        "event_id": ev.id,
                        "prompt": clean(m.prompt),
                        "ticket": clean(m.ticket) if m.ticket else None,
                        "device": ev.device,
                        "site": ev.site,
                        "window": clean(m.window),
                        "staff": clean(m.staff) if m.staff else None,
                        "outcome": m.outcome,
                        "ts": ev.ts,
                        "day": ev.day,
                        "hour": ev.hour,
                    }
                )
        asked = [ev for ev in new if isinstance(ev.model, payloads.RatingData)]
        earlier = [
            (ev.device, ev.id)
            for ev in asked
            if ev.model.reason_asked and (ev.device, ev.id) not in answers  # type: ignore[union-attr]
        ]
        if earlier:  # reasons stored before their rating (another collector, a resend)
            for r in conn.execute(
                select(reasons.c.device, reasons.c.rating, reasons.c.reason).where(
                    tuple_(reasons.c.device, reasons.c.rating).in_(earlier)
                )
            ):
                answers[(r.device, r.rating)] = r.reason
        for ev in asked:
            r = rating_of(ev)
            assert r is not None
            reason = answers.get((ev.device, ev.id), r.reason)
            rating_rows.append(
                {
                    "event_id": ev.id,
                    "device": ev.device,
                    "site": ev.site,
                    "window": r.window,
                    "staff": r.staff,
                    "score": r.score,
                    "scale": r.scale,
                    "label": r.label,
                    "reason": reason,
                    "reason_asked": r.reason_asked,
                    "prompt": r.prompt,
                    "ticket": r.ticket,
                    "misuse": r.misuse,
                    "response_ms": r.response_ms,
                    "ts": ev.ts,
                    "day": ev.day,
                    "hour": ev.hour,
                }
            )
        if rating_rows:
            conn.execute(insert_ignore(conn, ratings), rating_rows)
        if prompt_rows:
            conn.execute(insert_ignore(conn, prompts), prompt_rows)
        if reason_rows:
            conn.execute(insert_ignore(conn, reasons), reason_rows)
            in_batch = {row["event_id"] for row in rating_rows}
            later = [row for row in reason_rows if row["rating"] not in in_batch]
            if later:  # the rating came first: give it its reason (only the same device's)
                conn.execute(
                    update(ratings)
                    .where(
                        and_(
                            ratings.c.event_id == bindparam("k_rating"),
                            ratings.c.device == bindparam("k_device"),
                        )
                    )
                    .values(reason=bindparam("v_reason")),
                    [
                        {"k_rating": r["rating"], "k_device": r["device"], "v_reason": r["reason"]}
                        for r in sorted(later, key=lambda r: (r["device"], r["rating"]))
                    ],
                )

    def _queue_alerts(self, conn: Connection, new: list[Event], dev_rows: dict, now: float) -> None:
        """Each new alert gets its place in the forwarder's queue, in storing order per
        device (the device row's lock makes that order the same for every collector)."""
        alerts = sorted(
            (ev for ev in new if ev.type == "alert"),
            key=lambda e: (e.device, e.epoch or "", e.seq or 0, e.id),
        )
        if not alerts:
            return
        rows = []
        for ev in alerts:
            d = dev_rows[ev.device]
            d["alerts_stored"] += 1
            rows.append(
                {
                    "event_id": ev.id,
                    "device": ev.device,
                    "n": d["alerts_stored"],
                    "stored_at": now,
                    "attempts": 0,
                    "next_try": 0.0,
                }
            )
        conn.execute(insert_ignore(conn, alert_deliveries), rows)

    def _telemetry(self, conn: Connection, items: list[Telemetry], now: float) -> None:
        latest: dict[str, Telemetry] = {}
        for tm in items:
            latest[tm.device] = tm
        if not latest:
            return
        cols = [
            "site",
            "received_at",
            "ts",
            "uptime_s",
            "outbox_depth",
            "oldest_pending_s",
            "printer",
            "card_reader",
            "buttons",
            "clock_synced",
            "cert_days_left",
            "payload",
        ]
        rows = []
        for dev in sorted(latest):
            b = latest[dev].body
            rows.append(
                {
                    "device": dev,
                    "site": latest[dev].site,
                    "received_at": now,
                    "ts": clean(b.ts),
                    "uptime_s": b.uptime_s,
                    "outbox_depth": b.outbox_depth,
                    "oldest_pending_s": b.oldest_pending_s,
                    "printer": b.printer,
                    "card_reader": b.card_reader,
                    "buttons": b.buttons,
                    "clock_synced": b.clock_synced,
                    "cert_days_left": b.cert_days_left,
                    "payload": envelope_text(latest[dev].raw),
                }
            )
        conn.execute(upsert(conn, telemetry, ["device"], cols), rows)

    # -- streams: seq accounting per (device, epoch) -----------------------------------------

    def _streams(
        self, conn: Connection, new: list[Event], dev_rows: dict, now: float, out: _Outcome
    ) -> set[StreamKey]:
        """Record the new seqs of each stream; returns the streams that need a full look
        (holes, gaps, reused seqs). In-order arrival takes the fast path: no query."""
        seqs: dict[StreamKey, list[int]] = defaultdict(list)
        sites: dict[StreamKey, str] = {}
        for ev in new:
            if ev.seq is not None:
                key = (ev.device, ev.epoch or NO_EPOCH)
                seqs[key].append(ev.seq)
                sites[key] = ev.site
        if not seqs:
            return set()
        keys = sorted(seqs)
        created = {
            (r.device, r.epoch)
            for r in conn.execute(
                insert_ignore(conn, streams).returning(streams.c.device, streams.c.epoch),
                [
                    {
                        "device": d,
                        "epoch": e,
                        "site": sites[(d, e)],
                        "max_seq": 0,
                        "acked_seq": 0,
                        "ack_published": 0,
                        "open_gaps": 0,
                        "first_seen": now,
                    }
                    for d, e in keys
                ],
            )
        }
        rows = {
            (r.device, r.epoch): dict(r._mapping)
            for r in conn.execute(
                select(streams).where(tuple_(streams.c.device, streams.c.epoch).in_(keys))
            )
        }
        dirty: set[StreamKey] = set()
        for key in keys:
            s, got = rows[key], sorted(set(seqs[key]))
            dev = dev_rows[key[0]]
            if key in created and dev["epoch"] != key[1]:
                if dev["epoch"] is not None:
                    out.logs.append(
                        (
                            logging.WARNING,
                            f"{key[0]}: new outbox epoch {key[1] or '(none)'} after "
                            f"{dev['epoch'] or '(none)'}: accounted on its own (SPEC 9.2)",
                        )
                    )
                dev["epoch"] = key[1]
            s["first_seq"] = got[0] if s["first_seq"] is None else min(s["first_seq"], got[0])
            reused = [q for q in got if q <= s["acked_seq"]]
            if reused:
                out.logs.append((logging.ERROR, _reuse_message(key, reused)))
            fast = (
                not reused
                and s["open_gaps"] == 0
                and got[0] == s["acked_seq"] + 1
                and got[-1] - got[0] + 1 == len(got)
                and s["max_seq"] <= got[-1]
            )
            s["max_seq"] = max(s["max_seq"], got[-1])
            if fast:
                s["acked_seq"] = got[-1]
                self._ack_if_current(s, dev, out)
                self._write_stream(conn, s, dev)
            else:
                self._write_stream(conn, s, dev)
                dirty.add(key)
        return dirty

    def _write_stream(self, conn: Connection, s: dict, dev: dict) -> None:
        conn.execute(
            update(streams)
            .where(and_(streams.c.device == s["device"], streams.c.epoch == s["epoch"]))
            .values({k: v for k, v in s.items() if k not in ("device", "epoch")})
        )
        if dev["epoch"] == s["epoch"]:
            dev.update(first_seq=s["first_seq"], acked_seq=s["acked_seq"], max_seq=s["max_seq"])

    def _ack_if_current(self, s: dict, dev: dict, out: _Outcome) -> None:
        """Acks go out for the device's current epoch only: the retained ack topic holds one."""
        if dev["epoch"] == s["epoch"] and s["acked_seq"] > 0:
            s["ack_published"] = max(s["ack_published"], s["acked_seq"])
            out.acks.append((s["site"], s["device"], s["epoch"], s["acked_seq"]))

    def _account(
        self, conn: Connection, key: StreamKey, dev: dict, now: float, out: _Outcome
    ) -> None:
        """The full look at one stream: watermark, gaps opened and closed, reused seqs."""
        dev_id, epoch = key
        s = conn.execute(
            select(streams).where(and_(streams.c.device == dev_id, streams.c.epoch == epoch))
        ).first()
        if s is None:
            return
        s = dict(s._mapping)
        stored_list = [
            r[0]
            for r in conn.execute(
                select(events.c.seq)
                .where(
                    and_(
                        events.c.device == dev_id,
                        events.c.epoch == epoch,
                        events.c.seq > s["acked_seq"],
                    )
                )
                .order_by(events.c.seq)
            )
        ]
        twice = sorted({q for i, q in enumerate(stored_list) if i and stored_list[i - 1] == q})
        if twice:
            out.logs.append((logging.ERROR, _reuse_message(key, twice)))
        stored = set(stored_list)
        open_gaps = conn.execute(
            select(gaps).where(
                and_(gaps.c.device == dev_id, gaps.c.epoch == epoch, gaps.c.state == "open")
            )
        ).all()
        lost = [r for g in open_gaps for r in (g.lost or [])]
        lost += [
            r
            for g in conn.execute(
                select(gaps.c.lost).where(
                    and_(
                        gaps.c.device == dev_id,
                        gaps.c.epoch == epoch,
                        gaps.c.state.in_(("lost", "before")),
                        gaps.c.last_seq > s["acked_seq"],
                    )
                )
            )
            for r in (g.lost or [])
        ]
        if s["reported_seq"] is not None and s["reported_seq"] > s["max_seq"]:
            s["max_seq"] = s["reported_seq"]
        acked = ledger.advance(s["acked_seq"], stored, lost)
        missing = ledger.missing(acked, s["max_seq"], stored, lost)
        still_open = 0
        for g in open_gaps:
            if ledger.intersect((g.first_seq, g.last_seq), missing):
                still_open += 1
                continue
            if not g.lost:
                if not g.resends:
                    # Filled by itself (out-of-order arrival, another collector's batch).
                    conn.execute(delete(gaps).where(gaps.c.id == g.id))
                    continue
                state = "filled"
            else:
                # A head gap whose lost part lies below every event this database holds of
                # the epoch: the device had forgotten them before (acked by an earlier site
                # database, or expired), not lost on the way here.
                head = g.first_seq == 1 and s["first_seq"] is not None
                below = head and max(b for _, b in g.lost) < s["first_seq"]
                state = "before" if below else "lost"
            conn.execute(update(gaps).where(gaps.c.id == g.id).values(state=state, closed_at=now))
            n_lost = sum(b - a + 1 for a, b in (g.lost or []))
            if state == "filled":
                out.logs.append(
                    (
                        logging.INFO,
                        f"{dev_id}: gap {g.first_seq}-{g.last_seq} filled after "
                        f"{g.resends} resend request(s)",
                    )
                )
            elif state == "before":
                out.logs.append(
                    (
                        logging.INFO,
                        f"{dev_id}: seq {g.first_seq}-{g.last_seq} were gone from the device "
                        f"before this database first saw its epoch ({n_lost} events)",
                    )
                )
            else:
                out.logs.append(
                    (
                        logging.WARNING,
                        f"{dev_id}: gap {g.first_seq}-{g.last_seq} closed, {n_lost} events lost",
                    )
                )
        covered = [(g.first_seq, g.last_seq) for g in open_gaps]
        for m in missing:
            for a, b in _subtract(m, covered):
                conn.execute(
                    gaps.insert().values(
                        device=dev_id,
                        site=s["site"],
                        epoch=epoch,
                        first_seq=a,
                        last_seq=b,
                        detected_at=now,
                        resends=0,
                        state="open",
                        lost=[],
                    )
                )
                still_open += 1
                out.logs.append(
                    (
                        logging.DEBUG,
                        f"{dev_id}: seq {a}-{b} missing; waiting {self.gap_timeout_s:g} s "
                        "before asking for a resend",
                    )
                )
        moved = acked != s["acked_seq"]
        s["acked_seq"] = acked
        s["open_gaps"] = still_open
        if moved:
            self._ack_if_current(s, dev, out)
        self._write_stream(conn, s, dev)

    # -- status and replies ---------------------------------------------------------------

    def _apply_status(self, conn: Connection, st: Status, dev: dict, now: float) -> None:
        srow = conn.execute(
            select(sessions).where(
                and_(sessions.c.device == st.device, sessions.c.session == st.session)
            )
        ).first()
        svals: dict[str, Any] = {"seen_at": now}
        if st.state == "online":
            svals["online_ts"] = st.ts
        else:
            svals.update(offline_ts=st.ts, offline_reason=st.reason)
        if srow is None:
            conn.execute(
                insert_ignore(conn, sessions),
                {"device": st.device, "session": st.session, **svals},
            )
        else:
            conn.execute(
                update(sessions)
                .where(and_(sessions.c.device == st.device, sessions.c.session == st.session))
                .values(**svals)
            )
        dev["last_seen"] = now
        # A Will from an older session arrives late: it must not override a newer online.
        if st.session < dev["session"]:
            log.info(
                "collect: %s: ignored a late %s from session %d (current session %d)",
                st.device,
                st.state,
                st.session,
                dev["session"],
            )
            return
        if st.session == dev["session"] and dev["state"] == "offline" and st.state == "online":
            return  # a session that went offline stays offline
        if st.state != dev["state"]:
            dev["state_since"] = now
        if st.state == "online" and (dev["state"] != "online" or st.session != dev["session"]):
            dev["ping_at"] = None  # check its last seq soon; retry its open gaps now
            conn.execute(
                update(gaps)
                .where(and_(gaps.c.device == st.device, gaps.c.state == "open"))
                .values(resend_at=None)
            )
        dev.update(state=st.state, reason=st.reason, session=st.session, status_ts=st.ts)
        dev["site"] = st.site
        if st.role:
            dev["role"] = st.role
        if st.version:
            dev["version"] = st.version

    def _apply_reply(
        self, conn: Connection, rp: Reply, dev: dict, now: float, out: _Outcome
    ) -> set[StreamKey]:
        """Answers to our `ping` and `resend`; returns the streams to look at again."""
        if not rp.cid.startswith((CID_RESEND, CID_PING)):
            return set()  # a reply to somebody else's command
        dev["last_seen"] = now
        if not rp.ok:
            out.logs.append(
                (logging.WARNING, f"{rp.device} refused {rp.cid}: {rp.result or 'no reason'}")
            )
            return set()
        if rp.cid.startswith(CID_PING):
            last, epoch = rp.result.get("last_seq"), rp.result.get("epoch")
            if not isinstance(last, int) or isinstance(last, bool) or last < 0:
                return set()
            if epoch is None:
                epoch = NO_EPOCH
            if not isinstance(epoch, str):
                return set()
            if epoch != NO_EPOCH and dev["epoch"] != epoch:
                s_known = conn.execute(
                    select(streams.c.epoch).where(
                        and_(streams.c.device == rp.device, streams.c.epoch == epoch)
                    )
                ).first()
                if s_known is not None:
                    dev["epoch"] = epoch  # the device itself says which epoch is current
            key = (rp.device, epoch)
            n = conn.execute(
                update(streams)
                .where(and_(streams.c.device == rp.device, streams.c.epoch == epoch))
                .values(reported_seq=last)
            ).rowcount
            return {key} if n else set()
        gap = conn.execute(select(gaps).where(gaps.c.cid == rp.cid)).first()
        if gap is None or gap.device != rp.device:
            return set()
        gone = ledger.intersect((gap.first_seq, gap.last_seq), _ranges(rp.result.get("missing")))
        if gone:
            merged = ledger.merge(list(gap.lost or []) + [list(r) for r in gone])
            conn.execute(
                update(gaps).where(gaps.c.id == gap.id).values(lost=[list(r) for r in merged])
            )
            out.logs.append(
                (
                    logging.WARNING,
                    f"{rp.device} no longer has seq "
                    f"{', '.join(f'{a}-{b}' for a, b in gone)}: recorded as lost",
                )
            )
        return {(gap.device, gap.epoch)}

    # -- timers ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Resend requests for gaps that did not fill, tail pings, acks not yet published
        over this connection. Device rows are locked in sorted order, as in `store_batch`."""
        now = time.time()
        try:
            with self.engine.connect() as conn:
                due_gaps = conn.execute(
                    select(gaps).where(
                        and_(gaps.c.state == "open", gaps.c.detected_at <= now - self.gap_timeout_s)
                    )
                ).all()
                due_pings = conn.execute(
                    select(devices.c.device).where(
                        and_(
                            devices.c.state == "online",
                            devices.c.epoch.is_not(None),
                            (devices.c.ping_at.is_(None))
                            | (devices.c.ping_at <= now - self.ping_interval_s),
                        )
                    )
                ).all()
                current = []
                if self.republish:
                    self.republish = False
                    current = conn.execute(
                        select(
                            devices.c.site, devices.c.device, devices.c.epoch, devices.c.acked_seq
                        ).where(and_(devices.c.epoch.is_not(None), devices.c.acked_seq > 0))
                    ).all()
        except Exception as e:
            log.error("collect: timers failed: %s", str(e).splitlines()[0])
            return
        resend: dict[str, list[Any]] = defaultdict(list)
        for g in due_gaps:
            wait = min(RESEND_BACKOFF_MAX_S, self.gap_timeout_s * 2**g.resends)
            if g.resend_at is None or now - g.resend_at >= wait:
                resend[g.device].append(g.id)
        ping = {r.device for r in due_pings}
        if resend or ping:
            try:
                out = self._transaction(lambda conn: self._timers(conn, resend, ping, now))
            except Exception as e:
                log.error("collect: timers failed: %s", str(e).splitlines()[0])
                return
            self._after_commit(out)
        for r in current:
            self._publish_ack(r.site, r.device, r.epoch, r.acked_seq)

    def _timers(
        self, conn: Connection, resend: dict[str, list[Any]], ping: set[str], now: float
    ) -> _Outcome:
        out = _Outcome()
        wanted = sorted(set(resend) | ping)
        q = select(devices).where(devices.c.device.in_(wanted)).order_by(devices.c.device)
        if self.pg:
            q = q.with_for_update()
        rows = {r.device: r for r in conn.execute(q)}
        for dev_id in wanted:
            d = rows.get(dev_id)
            if d is None:
                continue
            for g in conn.execute(
                select(gaps).where(
                    and_(gaps.c.id.in_(resend.get(dev_id, [])), gaps.c.state == "open")
                )
            ).all():
                cid = CID_RESEND + uuid.uuid4().hex[:12]
                body: dict[str, Any] = {
                    "cid": cid,
                    "from": g.first_seq,
                    "to": min(g.last_seq, g.first_seq + MAX_RESEND_SPAN - 1),
                }
                if g.epoch != NO_EPOCH:
                    body["epoch"] = g.epoch
                out.commands.append((g.site, g.device, "resend", body))
                conn.execute(
                    update(gaps)
                    .where(gaps.c.id == g.id)
                    .values(resends=g.resends + 1, resend_at=now, cid=cid)
                )
                out.logs.append(
                    (
                        logging.WARNING,
                        f"{g.device}: seq {g.first_seq}-{g.last_seq} still missing after "
                        f"{int(now - g.detected_at)} s: resend asked (attempt {g.resends + 1})",
                    )
                )
            if (
                dev_id in ping
                and d.state == "online"
                and (d.ping_at is None or d.ping_at <= now - self.ping_interval_s)
            ):
                out.commands.append(
                    (d.site, dev_id, "ping", {"cid": CID_PING + uuid.uuid4().hex[:12]})
                )
                conn.execute(update(devices).where(devices.c.device == dev_id).values(ping_at=now))
        return out


def _reuse_message(key: StreamKey, seqs: list[int]) -> str:
    dev, epoch = key
    shown = ", ".join(map(str, seqs[:5]))
    return (
        f"{dev} sent new events with seq {shown} (epoch {epoch or '(none)'}), already used "
        "by other events here: was its outbox replaced without a new epoch? Give it a new "
        "device id, or delete its rows and its retained ack (docs/site.md)"
    )


def _ranges(v: Any) -> list[ledger.Range]:
    out = []
    if isinstance(v, list):
        for r in v:
            if (
                isinstance(r, list | tuple)
                and len(r) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in r)
                and r[0] <= r[1]
            ):
                out.append((r[0], r[1]))
    return out


def _subtract(r: ledger.Range, others: list[ledger.Range]) -> list[ledger.Range]:
    parts = [r]
    for a, b in others:
        nxt = []
        for x, y in parts:
            if b < x or a > y:
                nxt.append((x, y))
                continue
            if x < a:
                nxt.append((x, a - 1))
            if b < y:
                nxt.append((b + 1, y))
        parts = nxt
    return parts
