"""Seq accounting per device and outbox epoch (SPEC 9.2), in the database.

A *stream* is one epoch of one device (table `streams`): its `seq`s start at 1 and are
contiguous. For each batch the collector records the stream's new seqs; a stream whose new
seqs simply continue its watermark takes a fast path (no query); the others get one look
together (`account`): watermark over stored seqs and known losses, gaps opened, closed or
deleted. Acks go out for the device's current epoch only. Every function here runs inside
the batch's transaction, under the lock of the device rows it touches.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, tuple_, update
from sqlalchemy.engine import Connection

from central import ledger
from central.db import NO_EPOCH, events, gaps, insert_ignore, seq_aliases, streams
from central.messages import Event

StreamKey = tuple[str, str]  # (device, epoch); epoch '' for version-1 devices


@dataclass
class Outcome:
    """What one transaction did; applied to the counters and published only after its commit."""

    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    acks: list[tuple[str, str, str, int]] = field(default_factory=list)  # site, device, epoch, seq
    commands: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    logs: list[tuple[int, str]] = field(default_factory=list)  # logged after the commit
    # events refused because their id is stored for another device: (device, id, owner)
    foreign: list[tuple[str, str, str]] = field(default_factory=list)


def record(
    conn: Connection,
    new: list[Event],
    moved: list[Event],
    dev_rows: dict,
    srows: dict[StreamKey, dict],
    now: float,
    out: Outcome,
) -> set[StreamKey]:
    """Record the new seqs of each stream; returns the streams that need a full look
    (holes, gaps, reused seqs). In-order arrival takes the fast path: no query."""
    seqs: dict[StreamKey, list[int]] = defaultdict(list)
    sites: dict[StreamKey, str] = {}
    for ev in (*new, *moved):
        if ev.seq is not None:
            key = (ev.device, ev.epoch or NO_EPOCH)
            seqs[key].append(ev.seq)
            sites[key] = ev.site
    if not seqs:
        return set()
    keys = sorted(seqs)
    conn.execute(
        insert_ignore(conn, streams),
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
    rows = {
        (r.device, r.epoch): dict(r._mapping)
        for r in conn.execute(
            select(streams).where(tuple_(streams.c.device, streams.c.epoch).in_(keys))
        )
    }
    for dev_id in _contested(keys, new, dev_rows):
        settle_current(conn, dev_id, dev_rows[dev_id], out)
    dirty: set[StreamKey] = set()
    for key in keys:
        s, got = rows[key], sorted(set(seqs[key]))
        dev = dev_rows[key[0]]
        s["first_seq"] = got[0] if s["first_seq"] is None else min(s["first_seq"], got[0])
        below = [q for q in got if q <= s["acked_seq"]]
        reused = _reused(conn, key, below) if below else []
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
        srows[key] = s
        if fast:
            s["acked_seq"] = got[-1]
            ack_if_current(s, dev, out)
        else:
            dirty.add(key)
    return dirty


def _contested(keys: list[StreamKey], new: list[Event], dev_rows: dict) -> list[str]:
    """Devices whose current epoch this batch may change: it holds events of an epoch other
    than the current one, or a storage alert naming the epoch it follows. A device's first
    epoch simply becomes its current one."""
    epochs_of: dict[str, set[str]] = defaultdict(set)
    for dev_id, epoch in keys:
        epochs_of[dev_id].add(epoch)
    out = {ev.device for ev in new if _previous_epoch(ev.type, ev.kind, ev.data, ev.epoch)}
    for dev_id, seen in epochs_of.items():
        dev = dev_rows[dev_id]
        if dev["epoch"] is None and len(seen) == 1:
            dev["epoch"] = next(iter(seen))
        elif seen != {dev["epoch"]}:
            out.add(dev_id)
    return sorted(out)


def _previous_epoch(etype: str, kind: str | None, data: Any, epoch: str | None) -> str | None:
    """The epoch a critical `storage` alert says its own epoch follows (SPEC 9.2: the first
    event of a new outbox, a rotation, or a wiped data folder names `previous_epoch`)."""
    if etype != "alert" or kind != "storage" or not isinstance(data, dict):
        return None
    prev = data.get("previous_epoch")
    return prev if isinstance(prev, str) and prev and prev != (epoch or NO_EPOCH) else None


def settle_current(conn: Connection, dev_id: str, dev: dict, out: Outcome) -> None:
    """Decide the device's current epoch from what the device said, not from the order its
    epochs reached the site (several collectors, a broker session handing over old messages
    late). An epoch some storage alert names as `previous_epoch` is over. Among the epochs
    left, without that word from the device, the one whose last event has the newest id
    (UUIDv7: the device's clock when it made the event) wins, and the device is pinged so
    its answer (which names its epoch) settles it."""
    known = [
        r.epoch for r in conn.execute(select(streams.c.epoch).where(streams.c.device == dev_id))
    ]
    if not known:
        return
    over = _succeeded(conn, dev_id)
    heads = [e for e in known if e not in over] or known
    if len(heads) > 1:
        dev["ping_at"] = None
        newest = {e: _newest_id(conn, dev_id, e) for e in heads}
        heads = [max(heads, key=lambda e: (newest[e], e == dev["epoch"], e))]
    pick, was = heads[0], dev["epoch"]
    if pick == was:
        return
    if was is not None:
        out.logs.append(
            (
                logging.WARNING,
                f"{dev_id}: outbox epoch {pick or '(none)'} is now current, after "
                f"{was or '(none)'}; each is accounted on its own (SPEC 9.2)",
            )
        )
    dev["epoch"] = pick


def _succeeded(conn: Connection, dev_id: str) -> set[str]:
    """Epochs of the device that one of its stored storage alerts names as previous."""
    over = set()
    for r in conn.execute(
        select(events.c.epoch, events.c.payload).where(
            and_(events.c.device == dev_id, events.c.type == "alert", events.c.kind == "storage")
        )
    ):
        try:
            data = json.loads(r.payload).get("data")
        except (ValueError, AttributeError):
            continue
        prev = _previous_epoch("alert", "storage", data, r.epoch)
        if prev is not None:
            over.add(prev)
    return over


def _newest_id(conn: Connection, dev_id: str, epoch: str) -> str:
    """The id of the epoch's highest-seq event stored under it ('' when it has none: only
    events carried over from an earlier epoch, stored there)."""
    row = conn.execute(
        select(events.c.id)
        .where(and_(events.c.device == dev_id, events.c.epoch == epoch, events.c.seq.is_not(None)))
        .order_by(events.c.seq.desc())
        .limit(1)
    ).first()
    return row.id if row is not None else ""


def ack_new_current(
    conn: Connection, before: dict[str, str | None], dev_rows: dict, srows: dict, out: Outcome
) -> None:
    """A device whose current epoch changed in this transaction (a ping answer, a storage
    alert, a late epoch settled) gets the ack of its current epoch now: the retained ack
    topic may still hold the other epoch's, which the device ignores."""
    for dev_id in sorted(dev_rows):
        dev = dev_rows[dev_id]
        if dev["epoch"] is None or dev["epoch"] == before.get(dev_id):
            continue
        key = (dev_id, dev["epoch"])
        if key not in srows:
            row = conn.execute(
                select(streams).where(and_(streams.c.device == dev_id, streams.c.epoch == key[1]))
            ).first()
            if row is None:
                continue
            srows[key] = dict(row._mapping)
        ack_if_current(srows[key], dev, out)


def _reused(conn: Connection, key: StreamKey, seqs: list[int]) -> list[int]:
    """Seqs (new here, below the watermark) that another stored event already holds: the
    device numbered new events again without starting a new epoch."""
    dev, epoch = key
    held = [
        r[0]
        for r in conn.execute(
            select(events.c.seq).where(
                and_(events.c.device == dev, events.c.epoch == epoch, events.c.seq.in_(seqs))
            )
        )
    ] + [
        r[0]
        for r in conn.execute(
            select(seq_aliases.c.seq).where(
                and_(
                    seq_aliases.c.device == dev,
                    seq_aliases.c.epoch == epoch,
                    seq_aliases.c.seq.in_(seqs),
                )
            )
        )
    ]
    return sorted({q for q in held if held.count(q) > 1})


def write(conn: Connection, srows: dict[StreamKey, dict], dev_rows: dict) -> None:
    """One executemany for every stream the transaction changed (device locks held)."""
    if not srows:
        return
    cols = [c.name for c in streams.columns if c.name not in ("device", "epoch")]
    stmt = (
        update(streams)
        .where(
            and_(
                streams.c.device == bindparam("k_device"),
                streams.c.epoch == bindparam("k_epoch"),
            )
        )
        .values({c: bindparam(f"v_{c}") for c in cols})
    )
    params = []
    for key in sorted(srows):
        s = srows[key]
        params.append({"k_device": key[0], "k_epoch": key[1], **{f"v_{c}": s[c] for c in cols}})
        dev = dev_rows[key[0]]
        if dev["epoch"] == s["epoch"]:
            dev.update(first_seq=s["first_seq"], acked_seq=s["acked_seq"], max_seq=s["max_seq"])
    conn.execute(stmt, params)


def ack_if_current(s: dict, dev: dict, out: Outcome) -> None:
    """Acks go out for the device's current epoch only: the retained ack topic holds one."""
    if dev["epoch"] == s["epoch"] and s["acked_seq"] > 0:
        s["ack_published"] = max(s["ack_published"], s["acked_seq"])
        out.acks.append((s["site"], s["device"], s["epoch"], s["acked_seq"]))


def account(
    conn: Connection,
    keys: list[StreamKey],
    dev_rows: dict,
    srows: dict[StreamKey, dict],
    now: float,
    out: Outcome,
) -> None:
    """The full look at streams whose new seqs were not simply the next ones: watermark,
    gaps opened and closed, reused seqs. Three queries for all of them together."""
    if not keys:
        return
    wanted = tuple_(streams.c.device, streams.c.epoch).in_(keys)
    missing_rows = [k for k in keys if k not in srows]
    if missing_rows:
        q = select(streams).where(tuple_(streams.c.device, streams.c.epoch).in_(missing_rows))
        for r in conn.execute(q):
            srows[(r.device, r.epoch)] = dict(r._mapping)
    on_stream = and_(events.c.device == streams.c.device, events.c.epoch == streams.c.epoch)
    above: dict[StreamKey, list[int]] = defaultdict(list)
    for r in conn.execute(
        select(events.c.device, events.c.epoch, events.c.seq)
        .select_from(events.join(streams, on_stream))
        .where(and_(wanted, events.c.seq > streams.c.acked_seq))
        .order_by(events.c.device, events.c.epoch, events.c.seq)
    ):
        above[(r.device, r.epoch)].append(r.seq)
    on_alias = and_(
        seq_aliases.c.device == streams.c.device, seq_aliases.c.epoch == streams.c.epoch
    )
    for r in conn.execute(
        select(seq_aliases.c.device, seq_aliases.c.epoch, seq_aliases.c.seq)
        .select_from(seq_aliases.join(streams, on_alias))
        .where(and_(wanted, seq_aliases.c.seq > streams.c.acked_seq))
    ):
        above[(r.device, r.epoch)].append(r.seq)
    for k in above:
        above[k].sort()
    on_gap = and_(gaps.c.device == streams.c.device, gaps.c.epoch == streams.c.epoch)
    open_gaps: dict[StreamKey, list[Any]] = defaultdict(list)
    lost_by: dict[StreamKey, list[Any]] = defaultdict(list)
    for g in conn.execute(
        select(gaps)
        .select_from(gaps.join(streams, on_gap))
        .where(
            and_(
                wanted,
                (gaps.c.state == "open")
                | (
                    gaps.c.state.in_(("lost", "before", "superseded"))
                    & (gaps.c.last_seq > streams.c.acked_seq)
                ),
            )
        )
    ):
        if g.state == "open":
            open_gaps[(g.device, g.epoch)].append(g)
        elif g.state == "superseded":  # not coming under this epoch: accounted for
            lost_by[(g.device, g.epoch)].append([g.first_seq, g.last_seq])
        else:
            lost_by[(g.device, g.epoch)].extend(g.lost or [])
    deletes: list[int] = []
    closes: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for key in keys:
        if key in srows:
            _account_one(
                key,
                dev_rows[key[0]],
                srows[key],
                above[key],
                open_gaps[key],
                lost_by[key],
                now,
                out,
                deletes,
                closes,
                inserts,
            )
    if deletes:
        conn.execute(delete(gaps).where(gaps.c.id.in_(sorted(deletes))))
    if closes:
        conn.execute(
            update(gaps)
            .where(gaps.c.id == bindparam("k_id"))
            .values(state=bindparam("v_state"), closed_at=bindparam("v_closed")),
            sorted(closes, key=lambda c: c["k_id"]),
        )
    if inserts:
        conn.execute(gaps.insert(), inserts)


def _account_one(
    key: StreamKey,
    dev: dict,
    s: dict,
    stored_list: list[int],
    open_gaps: list[Any],
    lost_before: list[Any],
    now: float,
    out: Outcome,
    deletes: list[int],
    closes: list[dict[str, Any]],
    inserts: list[dict[str, Any]],
) -> None:
    dev_id, epoch = key
    stored_list = [q for q in stored_list if q > s["acked_seq"]]
    twice = sorted({q for i, q in enumerate(stored_list) if i and stored_list[i - 1] == q})
    if twice:
        out.logs.append((logging.ERROR, _reuse_message(key, twice)))
    stored = set(stored_list)
    lost = [r for g in open_gaps for r in (g.lost or [])] + list(lost_before)
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
                deletes.append(g.id)
                continue
            state = "filled"
        else:
            # A head gap whose lost part lies below every event this database holds of
            # the epoch: the device had forgotten them before (acked by an earlier site
            # database, or expired), not lost on the way here.
            head = g.first_seq == 1 and s["first_seq"] is not None
            below = head and max(b for _, b in g.lost) < s["first_seq"]
            state = "before" if below else "lost"
        closes.append({"k_id": g.id, "v_state": state, "v_closed": now})
        n_lost = sum(b - a + 1 for a, b in (g.lost or []))
        if state == "filled":
            msg = f"gap {g.first_seq}-{g.last_seq} filled after {g.resends} resend request(s)"
            out.logs.append((logging.INFO, f"{dev_id}: {msg}"))
        elif state == "before":
            msg = (
                f"seq {g.first_seq}-{g.last_seq} were gone from the device before this "
                f"database first saw its epoch ({n_lost} events)"
            )
            out.logs.append((logging.INFO, f"{dev_id}: {msg}"))
        else:
            msg = f"gap {g.first_seq}-{g.last_seq} closed, {n_lost} events lost"
            out.logs.append((logging.WARNING, f"{dev_id}: {msg}"))
    covered = [(g.first_seq, g.last_seq) for g in open_gaps]
    for m in missing:
        for a, b in _subtract(m, covered):
            inserts.append(
                {
                    "device": dev_id,
                    "site": s["site"],
                    "epoch": epoch,
                    "first_seq": a,
                    "last_seq": b,
                    "detected_at": now,
                    "resends": 0,
                    "resend_at": None,
                    "cid": None,
                    "state": "open",
                    "lost": [],
                    "closed_at": None,
                }
            )
            still_open += 1
    moved = acked != s["acked_seq"]
    s["acked_seq"] = acked
    s["open_gaps"] = still_open
    if moved:
        ack_if_current(s, dev, out)


def supersede(
    conn: Connection,
    dev_id: str,
    old: list[Any],
    srows: dict[StreamKey, dict],
    now: float,
    out: Outcome,
) -> None:
    """Close open gaps of epochs the device has left: it answers for its current epoch
    only, and carried what it still held of the old one into the new one (counted
    there); anything else stays in the outbox file it kept aside (its storage alert)."""
    conn.execute(
        update(gaps)
        .where(gaps.c.id.in_(sorted(g.id for g in old)))
        .values(state="superseded", closed_at=now)
    )
    for key in sorted({(g.device, g.epoch) for g in old}):
        if key not in srows:
            row = conn.execute(
                select(streams).where(and_(streams.c.device == key[0], streams.c.epoch == key[1]))
            ).first()
            if row is None:
                continue
            srows[key] = dict(row._mapping)
        srows[key]["open_gaps"] = 0
    ranges = ", ".join(f"{g.first_seq}-{g.last_seq}" for g in old[:5])
    out.logs.append(
        (
            logging.WARNING,
            f"{dev_id}: seq {ranges} of epoch {old[0].epoch or '(none)'} will not come "
            "under that epoch: the device has moved to a new one (what it still held was "
            "carried over; see its storage alert for the rest)",
        )
    )


def _reuse_message(key: StreamKey, seqs: list[int]) -> str:
    dev, epoch = key
    shown = ", ".join(map(str, seqs[:5]))
    return (
        f"{dev} sent new events with seq {shown} (epoch {epoch or '(none)'}), already used "
        "by other events here: was its outbox replaced without a new epoch? Give it a new "
        "device id, or delete its rows and its retained ack (docs/site.md)"
    )


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
