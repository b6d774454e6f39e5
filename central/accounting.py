"""The collector's bookkeeping in the database: store events once, acks, gaps, status, probes.

Everything a collector knows lives in the database, so several collectors of one
shared-subscription group (each with its own `Accounting`) act on the same state. The
owner passes `send(topic, body, retain) -> bool` to publish acks and commands, and calls
`store` inside a transaction, then `settle` for the devices it touched, and `tick` once a
second for the timers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from central import ledger
from central.db import devices, events, gaps, insert_ignore, ratings, sessions
from central.messages import Event, Reply, Status, envelope_text, parse_rating

log = logging.getLogger("careterm.collect")

RESEND_BACKOFF_MAX_S = 600.0
MAX_RESEND_SPAN = 1_000_000  # devices refuse larger `resend` ranges
CID_RESEND, CID_PROBE, CID_PING = "site-resend-", "site-probe-", "site-ping-"

Send = Callable[[str, dict[str, Any], bool], bool]


@dataclass
class Batch:
    """Messages received since the last commit."""

    events: list[Event] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    mids: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos) to PUBACK after commit
    rejected: int = 0

    def __len__(self) -> int:
        return len(self.events) + len(self.statuses) + len(self.replies) + self.rejected

    def __add__(self, other: Batch) -> Batch:
        return Batch(
            self.events + other.events,
            self.statuses + other.statuses,
            self.replies + other.replies,
            self.mids + other.mids,
            other.rejected,
        )


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
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.acked_here: dict[str, int] = {}  # acks published over the current connection

    def store_batch(self, batch: Batch) -> set[str]:
        """Commit the batch; returns the devices whose accounting moved. Raises
        OperationalError when the database is unreachable (nothing is lost: retry later)."""
        try:
            with self.engine.begin() as conn:
                return self.store(conn, batch)
        except OperationalError:
            raise
        except Exception as e:  # something in the batch the database refuses: find it
            log.error(
                "collect: the database refused a batch (%s); storing its messages one by one",
                str(e).splitlines()[0],
            )
            return self._store_one_by_one(batch)

    def _store_one_by_one(self, batch: Batch) -> set[str]:
        touched: set[str] = set()
        singles = (
            [Batch(events=[e]) for e in batch.events]
            + [Batch(statuses=[s]) for s in batch.statuses]
            + [Batch(replies=[r]) for r in batch.replies]
        )
        for one in singles:
            try:
                with self.engine.begin() as conn:
                    touched |= self.store(conn, one)
            except OperationalError:
                raise
            except Exception as e:
                self.rejected += 1
                what = one.events[0].id if one.events else "a status or reply"
                log.error(
                    "collect: dropped %s: the database refuses it (%s)",
                    what,
                    str(e).splitlines()[0],
                )
        return touched

    def store(self, conn: Connection, batch: Batch) -> set[str]:
        now = time.time()
        touched: set[str] = set()
        ins_ev = insert_ignore(self.engine, events)
        ins_rt = insert_ignore(self.engine, ratings)
        seqs: dict[str, list[int]] = {}
        sites: dict[str, str] = {}
        fresh: dict[str, list[int]] = {}
        for ev in batch.events:
            res = conn.execute(
                ins_ev,
                {
                    "id": ev.id,
                    "device": ev.device,
                    "site": ev.site,
                    "seq": ev.seq,
                    "type": ev.type,
                    "kind": ev.kind,
                    "ts": ev.ts,
                    "day": ev.day,
                    "hour": ev.hour,
                    "clock_synced": ev.clock_synced,
                    "received_at": now,
                    "topic": ev.topic[:255],
                    "payload": envelope_text(ev.envelope),
                },
            )
            if res.rowcount == 0:
                self.duplicates += 1
                continue
            self.stored += 1
            if ev.seq is not None:
                fresh.setdefault(ev.device, []).append(ev.seq)
            if ev.type == "rating":
                r = parse_rating(ev.data)
                if r is None:
                    log.warning(
                        "collect: rating %s from %s has no usable score; stored, not "
                        "counted in reports",
                        ev.id,
                        ev.device,
                    )
                else:
                    conn.execute(
                        ins_rt,
                        {
                            "event_id": ev.id,
                            "device": ev.device,
                            "site": ev.site,
                            "window": r.window,
                            "staff": r.staff,
                            "score": r.score,
                            "scale": r.scale,
                            "label": r.label,
                            "reason": r.reason,
                            "misuse": r.misuse,
                            "response_ms": r.response_ms,
                            "ts": ev.ts,
                            "day": ev.day,
                            "hour": ev.hour,
                        },
                    )
        for ev in batch.events:
            sites[ev.device] = ev.site
            if ev.seq is not None:
                seqs.setdefault(ev.device, []).append(ev.seq)
        for dev, site in sites.items():
            conn.execute(
                insert_ignore(self.engine, devices),
                {
                    "device": dev,
                    "site": site,
                    "acked_seq": 0,
                    "ack_published": 0,
                    "max_seq": 0,
                    "probe": "done",
                    "session": 0,
                },
            )
            conn.execute(update(devices).where(devices.c.device == dev).values(last_seen=now))
        for dev, got in seqs.items():
            touched.add(dev)
            row = conn.execute(select(devices).where(devices.c.device == dev)).one()
            values: dict[str, Any] = {"max_seq": max(row.max_seq, max(got))}
            reused = self._reused_seqs(conn, dev, batch, fresh.get(dev, []))
            if reused:
                # A new event id under a seq already accounted for: the device's outbox was
                # wiped or replaced. Its acks would now be wrong; a person must sort it out.
                log.error(
                    "collect: %s sent new events with seq %s, already used by other "
                    "events here: was its data directory wiped? Give it a new device id, "
                    "or delete its rows and its retained ack (docs/site.md)",
                    dev,
                    ", ".join(map(str, sorted(reused)[:5])),
                )
            if row.first_seq is None:
                first = min(got)
                values.update(first_seq=first, acked_seq=first - 1)
                if first > 1:
                    # A device that ran before this site saw it: ask what it still holds below
                    # its first seq, so the first ack cannot drop events never stored here.
                    cid = CID_PROBE + uuid.uuid4().hex[:12]
                    values.update(probe="asking", probe_cid=cid, probe_at=now)
                    self._command(
                        sites[dev],
                        dev,
                        "resend",
                        {"cid": cid, "from": max(1, first - MAX_RESEND_SPAN), "to": first - 1},
                    )
                    log.info(
                        "collect: new device %s starts at seq %d; asking what it still "
                        "holds below that",
                        dev,
                        first,
                    )
            conn.execute(update(devices).where(devices.c.device == dev).values(**values))
        for st in batch.statuses:
            self._apply_status(conn, st, now)
        for rp in batch.replies:
            if self._apply_reply(conn, rp, now):
                touched.add(rp.device)
        return touched

    def _reused_seqs(self, conn: Connection, dev: str, batch: Batch, seqs: list[int]) -> list[int]:
        """Seqs of new events that another stored event of this device already has."""
        if not seqs:
            return []
        ids = [e.id for e in batch.events if e.device == dev]
        q = select(events.c.seq).where(
            and_(events.c.device == dev, events.c.seq.in_(seqs), events.c.id.not_in(ids))
        )
        return sorted({r[0] for r in conn.execute(q)})

    def _apply_status(self, conn: Connection, st: Status, now: float) -> None:
        conn.execute(
            insert_ignore(self.engine, devices),
            {
                "device": st.device,
                "site": st.site,
                "acked_seq": 0,
                "ack_published": 0,
                "max_seq": 0,
                "probe": "done",
                "session": 0,
            },
        )
        row = conn.execute(select(devices).where(devices.c.device == st.device)).one()
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
                insert_ignore(self.engine, sessions),
                {"device": st.device, "session": st.session, **svals},
            )
        else:
            conn.execute(
                update(sessions)
                .where(and_(sessions.c.device == st.device, sessions.c.session == st.session))
                .values(**svals)
            )
        # A Will from an older session arrives late: it must not override a newer online.
        if st.session < row.session:
            log.info(
                "collect: %s: ignored a late %s from session %d (current session %d)",
                st.device,
                st.state,
                st.session,
                row.session,
            )
            return
        if st.session == row.session and row.state == "offline" and st.state == "online":
            return  # a session that went offline stays offline
        vals: dict[str, Any] = {
            "state": st.state,
            "reason": st.reason,
            "session": st.session,
            "status_ts": st.ts,
            "site": st.site,
        }
        if st.role:
            vals["role"] = st.role
        if st.version:
            vals["version"] = st.version
        if st.state == "online" and (row.state != "online" or st.session != row.session):
            vals["ping_at"] = None  # check its last seq soon; retry its open gaps now
            conn.execute(
                update(gaps)
                .where(and_(gaps.c.device == st.device, gaps.c.state == "open"))
                .values(resend_at=None)
            )
        conn.execute(update(devices).where(devices.c.device == st.device).values(**vals))

    def _apply_reply(self, conn: Connection, rp: Reply, now: float) -> bool:
        if not rp.cid.startswith((CID_RESEND, CID_PROBE, CID_PING)):
            return False  # a reply to somebody else's command
        row = conn.execute(select(devices).where(devices.c.device == rp.device)).first()
        if row is None:
            return False
        if not rp.ok:
            log.warning("collect: %s refused %s: %s", rp.device, rp.cid, rp.result or "no reason")
        if rp.cid.startswith(CID_PING):
            last = rp.result.get("last_seq")
            if isinstance(last, int) and not isinstance(last, bool) and last >= 0:
                vals: dict[str, Any] = {"reported_seq": last}
                if row.first_seq is not None and last > row.max_seq:
                    vals["max_seq"] = last  # events the device has that never arrived
                    log.info(
                        "collect: %s reports seq %d, highest received %d",
                        rp.device,
                        last,
                        row.max_seq,
                    )
                conn.execute(update(devices).where(devices.c.device == rp.device).values(**vals))
            return True
        if rp.cid.startswith(CID_PROBE):
            if rp.cid != row.probe_cid or row.probe != "asking":
                return False
            vals = {"probe": "done"}
            missing = _ranges(rp.result.get("missing"))
            count = rp.result.get("count")
            if rp.ok and isinstance(count, int) and count > 0 and row.first_seq:
                lowest = ledger.advance(0, [], missing) + 1  # first seq not reported missing
                if lowest < row.first_seq:
                    vals["acked_seq"] = min(row.acked_seq, lowest - 1)
                    log.info(
                        "collect: %s still holds events from seq %d: they will be collected "
                        "before the first ack",
                        rp.device,
                        lowest,
                    )
            conn.execute(update(devices).where(devices.c.device == rp.device).values(**vals))
            return True
        gap = conn.execute(select(gaps).where(gaps.c.cid == rp.cid)).first()
        if gap is None or not rp.ok:
            return False
        gone = ledger.intersect((gap.first_seq, gap.last_seq), _ranges(rp.result.get("missing")))
        if gone:
            merged = ledger.merge(list(gap.lost or []) + [list(r) for r in gone])
            conn.execute(
                update(gaps).where(gaps.c.id == gap.id).values(lost=[list(r) for r in merged])
            )
            log.warning(
                "collect: %s no longer has seq %s: recorded as lost",
                rp.device,
                ", ".join(f"{a}-{b}" for a, b in gone),
            )
        return True

    # -- acks and gaps --------------------------------------------------------------------

    def settle(self, devs: Iterable[str]) -> None:
        """Advance each device's watermark, publish acks, open and close gaps."""
        for dev in sorted(devs):
            try:
                with self.engine.begin() as conn:
                    self._settle_device(conn, dev)
            except Exception as e:
                log.error("collect: accounting for %s failed: %s", dev, str(e).splitlines()[0])

    def _settle_device(self, conn: Connection, dev: str) -> None:
        row = conn.execute(select(devices).where(devices.c.device == dev)).first()
        if row is None or row.first_seq is None:
            return
        stored = [
            r[0]
            for r in conn.execute(
                select(events.c.seq)
                .where(and_(events.c.device == dev, events.c.seq > row.acked_seq))
                .order_by(events.c.seq)
            )
        ]
        dev_gaps = conn.execute(
            select(gaps).where(and_(gaps.c.device == dev, gaps.c.state == "open"))
        ).all()
        lost = [r for g in dev_gaps for r in (g.lost or [])]
        lost += [
            r
            for g in conn.execute(
                select(gaps.c.lost).where(
                    and_(
                        gaps.c.device == dev,
                        gaps.c.state == "lost",
                        gaps.c.last_seq > row.acked_seq,
                    )
                )
            )
            for r in (g.lost or [])
        ]
        acked = ledger.advance(row.acked_seq, stored, lost)
        if acked != row.acked_seq:
            conn.execute(
                update(devices)
                .where(and_(devices.c.device == dev, devices.c.acked_seq < acked))
                .values(acked_seq=acked)
            )
        now = time.time()
        missing = ledger.missing(acked, row.max_seq, stored, lost)
        for g in dev_gaps:
            if not ledger.intersect((g.first_seq, g.last_seq), missing):
                state = "lost" if g.lost else "filled"
                if state == "filled" and not g.resends:
                    # Filled by itself (out-of-order arrival, another collector's batch):
                    # not worth a row.
                    conn.execute(delete(gaps).where(gaps.c.id == g.id))
                    continue
                conn.execute(
                    update(gaps).where(gaps.c.id == g.id).values(state=state, closed_at=now)
                )
                if state == "filled":
                    log.info(
                        "collect: %s: gap %d-%d filled after %d resend request(s)",
                        dev,
                        g.first_seq,
                        g.last_seq,
                        g.resends,
                    )
                else:
                    log.warning(
                        "collect: %s: gap %d-%d closed, %d events lost",
                        dev,
                        g.first_seq,
                        g.last_seq,
                        sum(b - a + 1 for a, b in g.lost),
                    )
        open_ranges = [(g.first_seq, g.last_seq) for g in dev_gaps]
        for m in missing:
            for a, b in _subtract(m, open_ranges):
                conn.execute(
                    insert_ignore(self.engine, gaps),
                    {
                        "device": dev,
                        "site": row.site,
                        "first_seq": a,
                        "last_seq": b,
                        "detected_at": now,
                        "resends": 0,
                        "state": "open",
                        "lost": [],
                    },
                )
                log.debug(
                    "collect: %s: seq %d-%d missing; waiting %g s before asking for a resend",
                    dev,
                    a,
                    b,
                    self.gap_timeout_s,
                )
        if (
            row.probe == "done"
            and acked > 0
            and self.acked_here.get(dev) != acked
            and self.send(self._topic(row.site, dev, "ack"), {"seq": acked}, True)
        ):
            self.acked_here[dev] = acked
            if acked > row.ack_published:
                conn.execute(
                    update(devices).where(devices.c.device == dev).values(ack_published=acked)
                )

    def tick(self) -> None:
        """Timers: resend requests, baseline probes that got no answer, tail pings, acks."""
        now = time.time()
        due: set[str] = set()
        try:
            with self.engine.begin() as conn:
                for g in conn.execute(select(gaps).where(gaps.c.state == "open")).all():
                    due.add(g.device)
                    if now - g.detected_at < self.gap_timeout_s:
                        continue
                    wait = min(RESEND_BACKOFF_MAX_S, self.gap_timeout_s * 2**g.resends)
                    if g.resend_at is not None and now - g.resend_at < wait:
                        continue
                    cid = CID_RESEND + uuid.uuid4().hex[:12]
                    self._command(
                        g.site,
                        g.device,
                        "resend",
                        {
                            "cid": cid,
                            "from": g.first_seq,
                            "to": min(g.last_seq, g.first_seq + MAX_RESEND_SPAN - 1),
                        },
                    )
                    conn.execute(
                        update(gaps)
                        .where(gaps.c.id == g.id)
                        .values(resends=g.resends + 1, resend_at=now, cid=cid)
                    )
                    log.warning(
                        "collect: %s: seq %d-%d still missing after %d s: resend asked "
                        "(attempt %d)",
                        g.device,
                        g.first_seq,
                        g.last_seq,
                        int(now - g.detected_at),
                        g.resends + 1,
                    )
                for d in conn.execute(select(devices)).all():
                    if (
                        d.probe == "asking"
                        and d.probe_at
                        and now - d.probe_at >= self.gap_timeout_s
                    ):
                        log.warning(
                            "collect: %s did not say what it holds below seq %s; taking "
                            "seq %s as its first",
                            d.device,
                            d.first_seq,
                            d.first_seq,
                        )
                        conn.execute(
                            update(devices).where(devices.c.device == d.device).values(probe="done")
                        )
                        due.add(d.device)
                    if (
                        d.state == "online"
                        and d.first_seq is not None
                        and (d.ping_at is None or now - d.ping_at >= self.ping_interval_s)
                    ):
                        self._command(
                            d.site, d.device, "ping", {"cid": CID_PING + uuid.uuid4().hex[:12]}
                        )
                        conn.execute(
                            update(devices).where(devices.c.device == d.device).values(ping_at=now)
                        )
                    if (
                        d.probe == "done"
                        and d.acked_seq > 0
                        and self.acked_here.get(d.device) != d.acked_seq
                    ):
                        due.add(d.device)
        except Exception as e:
            log.error("collect: timers failed: %s", str(e).splitlines()[0])
            return
        self.settle(due)

    def _command(self, site: str, device: str, name: str, body: dict[str, Any]) -> None:
        self.send(self._topic(site, device, f"cmd/{name}"), body, False)

    def _topic(self, site: str, device: str, leaf: str) -> str:
        return f"{self.topic_root}/{site}/{device}/{leaf}"


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
