"""The collector's bookkeeping in the database: store events once, account for every seq of
every outbox epoch (central.epochs), publish acks, chase gaps, keep device status, and the
rows reports and the console read (central.derived).

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

from sqlalchemy import and_, bindparam, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from central import derived, epochs, ledger
from central.db import (
    NO_EPOCH,
    devices,
    events,
    gaps,
    insert_ignore,
    insert_new_events,
    is_retryable,
    seq_aliases,
    sessions,
    streams,
)
from central.epochs import Outcome, StreamKey
from central.messages import Event, Reply, Status, Telemetry, clean, envelope_text
from terminal.backoff import Backoff
from terminal.topics import Topics

log = logging.getLogger("careterm.collect")

RESEND_BACKOFF_MAX_S = 600.0
MAX_RESEND_SPAN = 1_000_000  # devices refuse larger `resend` ranges
CID_RESEND, CID_PING = "site-resend-", "site-ping-"
RETRIES = 8
ACK_HEAL_S = 60.0  # how often the acks of recently active devices are published again
EVENT_COLUMNS = [
    "id",
    "device",
    "site",
    "epoch",
    "seq",
    "type",
    "kind",
    "ts",
    "day",
    "hour",
    "clock_synced",
    "valid",
    "received_at",
    "topic",
    "payload",
]

Send = Callable[[str, dict[str, Any], bool], bool]


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
        # The ack last published per device over the current connection, (epoch, seq): the
        # retained ack topic holds one, so an ack of another epoch in between replaces it.
        self.acked_here: dict[str, tuple[str, int]] = {}
        self.republish = True  # publish every current ack again (after a reconnect)
        self.foreign_from: set[str] = set()  # devices already logged for another's event id
        self.heal_at = time.time() + ACK_HEAL_S

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

    def _transaction(self, work: Callable[[Connection], Outcome]) -> Outcome:
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

    def _store_one_by_one(self, batch: Batch) -> Outcome:
        total = Outcome()
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
            total.foreign += out.foreign
        return total

    def _after_commit(self, out: Outcome) -> None:
        self.stored += out.stored
        self.duplicates += out.duplicates
        self.rejected += out.dropped
        for level, msg in out.logs:
            log.log(level, "collect: %s", msg)
        for dev, eid, owner in out.foreign:
            self._refuse_foreign(dev, eid, owner)
        for site, dev, epoch, seq in self._latest_acks(out.acks):
            self._publish_ack(site, dev, epoch, seq)
        for site, dev, name, body in out.commands:
            self.send(Topics(self.topic_root, site, dev).command(name), body, False)

    def _refuse_foreign(self, dev: str, eid: str, owner: str) -> None:
        """An event whose id is stored for another device is not this device's event stored:
        it is neither stored nor accounted nor acked (the device keeps it). Counted as
        refused; logged once per device, as every refusal is."""
        self.rejected += 1
        if dev in self.foreign_from:
            log.debug("collect: %s: refused %s, an id stored for %s", dev, eid, owner)
            return
        self.foreign_from.add(dev)
        log.error(
            "collect: %s sent event %s, but that id is stored here for device %s: refused, "
            "not acked (later ones from %s are counted, not logged). Was this device's data "
            "folder copied from %s (a cloned SD card image)? Give it its own data folder "
            "(docs/site.md, Duplicate event ids)",
            dev,
            eid,
            owner,
            dev,
            owner,
        )

    def _latest_acks(
        self, acks: list[tuple[str, str, str, int]]
    ) -> list[tuple[str, str, str, int]]:
        """The acks a commit calls for, as the database holds them now. Another collector
        may have committed (and acked) more of the stream since this commit; publishing
        this commit's lower value after its ack would leave the retained ack behind. An
        epoch that is no longer current (another collector settled it) is not acked here.
        Narrows the race to the moment between this read and the publish; `tick` heals
        what slips through. PostgreSQL only: that is where several collectors share a
        database (on SQLite a read here would take the write lock, BEGIN IMMEDIATE)."""
        if not acks or not self.pg:
            return acks
        keys = sorted({(dev, epoch) for _, dev, epoch, _ in acks})
        try:
            with self.engine.connect() as conn:
                held = {
                    (r.device, r.epoch): (r.acked_seq, r.current)
                    for r in conn.execute(
                        select(
                            streams.c.device,
                            streams.c.epoch,
                            streams.c.acked_seq,
                            devices.c.epoch.label("current"),
                        )
                        .join(devices, devices.c.device == streams.c.device)
                        .where(tuple_(streams.c.device, streams.c.epoch).in_(keys))
                    )
                }
        except OperationalError:
            return acks  # committed: what the commit saw is safe to publish
        out = []
        for site, dev, epoch, seq in acks:
            acked, current = held.get((dev, epoch), (seq, epoch))
            if current == epoch:
                out.append((site, dev, epoch, max(seq, acked)))
        return out

    def _publish_ack(self, site: str, dev: str, epoch: str, seq: int, force: bool = False) -> None:
        body: dict[str, Any] = {"seq": seq}
        if epoch != NO_EPOCH:
            body["epoch"] = epoch
        if self.acked_here.get(dev) == (epoch, seq) and not force:
            return
        if self.send(Topics(self.topic_root, site, dev).ack, body, True):
            self.acked_here[dev] = (epoch, seq)
        else:
            self.republish = True

    # -- one transaction ------------------------------------------------------------------

    def _store(self, conn: Connection, batch: Batch) -> Outcome:
        out = Outcome()
        now = time.time()
        new, moved = self._insert_events(conn, batch.events, now, out)
        dev_rows = self._lock_devices(conn, batch, now)
        before = {d: row["epoch"] for d, row in dev_rows.items()}
        kiosks = derived.pad_events_of_kiosks(new, dev_rows)
        if kiosks:
            self._not_counted(conn, kiosks, out)
        out_ids = {ev.id for ev in kiosks}
        derived.insert_details(conn, [ev for ev in new if ev.id not in out_ids], dev_rows)
        srows: dict[StreamKey, dict] = {}
        dirty = epochs.record(conn, new, moved, dev_rows, srows, now, out)
        for st in batch.statuses:
            self._apply_status(conn, st, dev_rows[st.device], now)
        for rp in batch.replies:
            if rp.device in dev_rows:
                dirty |= self._apply_reply(conn, rp, dev_rows[rp.device], srows, now, out)
        epochs.account(conn, sorted(dirty), dev_rows, srows, now, out)
        epochs.ack_new_current(conn, before, dev_rows, srows, out)
        epochs.write(conn, srows, dev_rows)
        derived.queue_alerts(conn, new, dev_rows, now)
        derived.store_telemetry(conn, batch.telemetry, now)
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
        self, conn: Connection, evs: list[Event], now: float, out: Outcome
    ) -> tuple[list[Event], list[Event]]:
        """Insert the batch's events (sorted by id: every collector takes these locks in the
        same order); returns the events that were new, and the repeats that came under
        another (epoch, seq) than the stored copy (carried into a new epoch) and were
        recorded as such for the first time."""
        unique: dict[str, Event] = {}
        for ev in evs:
            first = unique.setdefault(ev.id, ev)
            if first.device != ev.device:  # two devices, one id, in one batch
                out.foreign.append((ev.device, ev.id, first.device))
        ordered = [unique[k] for k in sorted(unique)]
        if not ordered:
            return [], []
        rows = [
            (
                ev.id,
                ev.device,
                ev.site,
                ev.epoch or NO_EPOCH,
                ev.seq,
                ev.type,
                clean(ev.kind) if ev.kind else None,
                ev.ts,
                ev.day,
                ev.hour,
                ev.clock_synced,
                ev.data_error is None,
                now,
                ev.topic[:255],
                ev.text or envelope_text(ev.envelope),
            )
            for ev in ordered
        ]
        fresh = insert_new_events(conn, EVENT_COLUMNS, rows)
        new = [ev for ev in ordered if ev.id in fresh]
        repeats = [ev for ev in ordered if ev.id not in fresh]
        moved = self._aliases(conn, repeats, now, out) if repeats else []
        out.stored += len(new)
        out.duplicates += len(evs) - len(new) - len(out.foreign)
        for ev in new:
            if ev.data_error:
                out.logs.append(
                    (
                        logging.WARNING,
                        f"{ev.device}: {ev.type} {ev.id} stored, but its data is not a valid "
                        f"{ev.type} ({ev.data_error}); reports leave it out",
                    )
                )
        return new, moved

    def _aliases(
        self, conn: Connection, repeats: list[Event], now: float, out: Outcome
    ) -> list[Event]:
        """Repeats whose stored copy has another (epoch, seq): a device that rotated its
        outbox carries unacked events into the new epoch with new seqs and the same ids.
        A repeat whose stored copy is another device's is no repeat of this device's event:
        refused (`out.foreign`), never accounted as stored."""
        stored = {
            r.id: r
            for r in conn.execute(
                select(events.c.id, events.c.device, events.c.epoch, events.c.seq).where(
                    events.c.id.in_([ev.id for ev in repeats])
                )
            )
        }
        own = []
        for ev in repeats:
            row = stored.get(ev.id)
            if row is not None and row.device != ev.device:
                out.foreign.append((ev.device, ev.id, row.device))
            elif row is not None and ev.seq is not None:
                own.append(ev)
        places = sorted(
            (
                (ev.device, ev.epoch or NO_EPOCH, ev.seq, ev)
                for ev in own
                if (stored[ev.id].epoch, stored[ev.id].seq) != (ev.epoch or NO_EPOCH, ev.seq)
            ),
            key=lambda t: t[:3],
        )
        if not places:
            return []
        inserted = {
            (r.device, r.epoch, r.seq)
            for r in conn.execute(
                insert_ignore(conn, seq_aliases).returning(
                    seq_aliases.c.device, seq_aliases.c.epoch, seq_aliases.c.seq
                ),
                [
                    {"device": d, "epoch": e, "seq": q, "event_id": ev.id, "received_at": now}
                    for d, e, q, ev in places
                ],
            )
        }
        return [ev for d, e, q, ev in places if (d, e, q) in inserted]

    def _not_counted(self, conn: Connection, evs: list[Event], out: Outcome) -> None:
        """Events a device's role does not make: stored as received, `valid` false."""
        conn.execute(
            update(events).where(events.c.id == bindparam("k_id")).values(valid=False),
            [{"k_id": ev.id} for ev in sorted(evs, key=lambda e: e.id)],
        )
        for ev in evs:
            out.logs.append(
                (
                    logging.WARNING,
                    f"{ev.device}: {ev.type} {ev.id} stored, but its device's status says it "
                    "is a kiosk, and only rating pads make ratings, reasons and prompts: "
                    "reports leave it out (check the device's role and configuration, "
                    "careterm doctor on the device)",
                )
            )

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

    # -- streams: seq accounting per (device, epoch) -----------------------------------------

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
        self,
        conn: Connection,
        rp: Reply,
        dev: dict,
        srows: dict[StreamKey, dict],
        now: float,
        out: Outcome,
    ) -> set[StreamKey]:
        """Answers to our `ping` and `resend`; returns the streams to look at again."""
        if not rp.cid.startswith((CID_RESEND, CID_PING)):
            return set()  # a reply to somebody else's command
        dev["last_seen"] = now
        if not rp.ok:
            out.logs.append(
                (logging.WARNING, f"{rp.device} refused {rp.cid}: {rp.result or 'no reason'}")
            )
            if rp.cid.startswith(CID_RESEND) and "epoch" in str(rp.result.get("error", "")):
                # A resend for an epoch the device has left: it can never be answered.
                gap = conn.execute(select(gaps).where(gaps.c.cid == rp.cid)).first()
                if gap is not None and gap.device == rp.device and gap.state == "open":
                    epochs.supersede(conn, rp.device, [gap], srows, now, out)
            return set()
        if rp.cid.startswith(CID_PING):
            last, epoch = rp.result.get("last_seq"), rp.result.get("epoch")
            if not isinstance(last, int) or isinstance(last, bool) or last < 0:
                return set()
            if epoch is None:
                epoch = NO_EPOCH
            if not isinstance(epoch, str):
                return set()
            if epoch != NO_EPOCH:
                older = conn.execute(
                    select(gaps).where(
                        and_(
                            gaps.c.device == rp.device,
                            gaps.c.epoch != epoch,
                            gaps.c.state == "open",
                        )
                    )
                ).all()
                if older:
                    epochs.supersede(conn, rp.device, older, srows, now, out)
            key = (rp.device, epoch)
            if key not in srows:
                row = conn.execute(
                    select(streams).where(
                        and_(streams.c.device == rp.device, streams.c.epoch == epoch)
                    )
                ).first()
                if row is None:
                    return set()  # no event of that epoch here yet (or a v2 device's reply
                    # without its epoch: its last_seq cannot be placed)
                srows[key] = dict(row._mapping)
            if epoch != NO_EPOCH and dev["epoch"] != epoch:
                dev["epoch"] = epoch  # the device itself says which epoch is current
            srows[key]["reported_seq"] = last
            return {key}
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
                current, heal = [], []
                if self.republish:
                    self.republish = False
                    current = conn.execute(_current_acks()).all()
                elif now >= self.heal_at:
                    self.heal_at = now + ACK_HEAL_S
                    heal = conn.execute(
                        _current_acks().where(devices.c.last_event_at >= now - 2 * ACK_HEAL_S)
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
        for r in heal:
            # Again, even if this collector published it: another collector's lower ack
            # may have reached the broker after it (several collectors publish unordered).
            # A device active in the last two periods gets one after it went quiet.
            self._publish_ack(r.site, r.device, r.epoch, r.acked_seq, force=True)

    def _timers(
        self, conn: Connection, resend: dict[str, list[Any]], ping: set[str], now: float
    ) -> Outcome:
        out = Outcome()
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


def _current_acks() -> Any:
    """Each device's ack of its current epoch, as the database holds it."""
    return select(devices.c.site, devices.c.device, devices.c.epoch, devices.c.acked_seq).where(
        and_(devices.c.epoch.is_not(None), devices.c.acked_seq > 0)
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
