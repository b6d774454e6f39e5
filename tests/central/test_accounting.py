"""Seq accounting per (device, epoch), acks, gaps, reasons and alerts, on SQLite and PostgreSQL,
through the collector's own storing code (no broker: `send` records what would be published)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from central.accounting import Accounting, Batch
from central.db import (
    alert_deliveries,
    devices,
    gaps,
    prompts,
    ratings,
    seq_aliases,
    streams,
    telemetry,
)
from central.messages import parse_message

EPOCH_A = "a" * 32
EPOCH_B = "b" * 32
_n = [0]


def env(
    device: str,
    seq: int | None,
    etype: str = "rating",
    data: dict[str, Any] | None = None,
    epoch: str | None = EPOCH_A,
    eid: str | None = None,
) -> dict[str, Any]:
    _n[0] += 1
    e: dict[str, Any] = {
        "v": 1,
        "id": eid or f"0193a1b2-0000-7000-8000-{_n[0]:012d}",
        "seq": seq,
        "device": device,
        "site": "main",
        "type": etype,
        "ts": "2026-11-23T09:41:12.345+08:00",
        "clock_synced": True,
        "data": data if data is not None else rating(),
    }
    if epoch is not None:
        e["epoch"] = epoch
    return e


def new_epoch_alert(device: str, epoch: str, previous: str | None) -> dict[str, Any]:
    """The first event of a new outbox (seq 1): a critical storage alert naming the epoch
    it follows (terminal/outbox.py)."""
    data = {"kind": "storage", "severity": "critical", "message": "a new outbox started"}
    return env(device, 1, "alert", {**data, "previous_epoch": previous}, epoch=epoch)


def rating(score: int = 4, reason_asked: bool = False, **kw: Any) -> dict[str, Any]:
    return {
        "window": "W03",
        "staff": "E1024",
        "score": score,
        "scale": 4,
        "label": "x",
        "reason": None,
        "reason_asked": reason_asked,
        "prompt": None,
        "misuse": False,
        "response_ms": 900,
        **kw,
    }


def topic_of(e: dict[str, Any]) -> str:
    base = f"careterm/{e['site']}/{e['device']}"
    if e["type"] == "alert":
        return f"{base}/alerts/{e['data']['kind']}"
    return f"{base}/events/{e['type']}"


class Books:
    """An `Accounting` whose publishes are recorded."""

    def __init__(self, engine: Any, gap_timeout_s: float = 60.0) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []
        self.acct = Accounting(
            engine,
            lambda t, b, r: self.sent.append((t, b, r)) or True,
            gap_timeout_s=gap_timeout_s,
        )
        self.engine = engine

    def store(self, *envs: dict[str, Any], raw: list[tuple[str, Any]] = ()) -> None:
        self.acct.store_batch(self.batch(*envs, raw=raw))

    def batch(self, *envs: dict[str, Any], raw: list[tuple[str, Any]] = ()) -> Batch:
        b = Batch()
        msgs = [(topic_of(e), e) for e in envs] + list(raw)
        for topic, body in msgs:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            m = parse_message(topic, payload)
            kind = type(m).__name__
            {"Event": b.events, "Status": b.statuses, "Reply": b.replies, "Telemetry": b.telemetry}[
                kind
            ].append(m)
        return b

    def acks(self, device: str) -> list[dict[str, Any]]:
        return [b for t, b, _ in self.sent if t == f"careterm/main/{device}/ack"]

    def commands(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(t, b) for t, b, _ in self.sent if t.endswith(f"/cmd/{name}")]

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.engine.connect() as c:
            return c.execute(select(table).where(*where)).all()


def test_in_order_events_are_acked_with_their_epoch(engine) -> None:
    books = Books(engine)
    books.store(*[env("pad-a", i) for i in range(1, 6)])
    books.store(*[env("pad-a", i) for i in range(6, 9)])
    assert books.acks("pad-a") == [{"seq": 5, "epoch": EPOCH_A}, {"seq": 8, "epoch": EPOCH_A}]
    (s,) = books.rows(streams)
    assert (s.first_seq, s.acked_seq, s.max_seq, s.open_gaps) == (1, 8, 8, 0)
    (d,) = books.rows(devices)
    assert (d.epoch, d.first_seq, d.acked_seq, d.max_seq) == (EPOCH_A, 1, 8, 8)
    assert books.acct.stored == 8 and books.rows(gaps) == []


def test_a_version_1_device_without_epoch_gets_an_ack_without_epoch(engine) -> None:
    books = Books(engine)
    books.store(*[env("pad-v1", i, epoch=None) for i in range(1, 4)])
    assert books.acks("pad-v1") == [{"seq": 3}]
    (s,) = books.rows(streams)
    assert (s.epoch, s.acked_seq) == ("", 3)


def test_arrival_out_of_order_across_batches_is_no_gap_and_no_resend(engine) -> None:
    """What two collectors of a group do to a new device: later seqs committed first."""
    books = Books(engine, gap_timeout_s=0.0)
    batch2 = [env("pad-new", i) for i in range(4, 8)]
    batch1 = [env("pad-new", i) for i in range(1, 4)]
    books.store(*batch2)
    assert books.acks("pad-new") == []  # 1..3 not here yet: no ack may cover them
    books.store(*batch1)
    assert books.acks("pad-new") == [{"seq": 7, "epoch": EPOCH_A}]
    books.acct.tick()
    assert books.commands("resend") == []
    assert books.rows(gaps) == []
    (s,) = books.rows(streams)
    assert (s.first_seq, s.acked_seq) == (1, 7)


def test_a_new_epoch_is_neither_a_gap_nor_a_duplicate(engine) -> None:
    books = Books(engine, gap_timeout_s=0.0)
    books.store(*[env("pad-a", i, epoch=EPOCH_A) for i in range(1, 11)])
    # the outbox was damaged: a new epoch starts again at seq 1 with a storage alert (SPEC 9.2)
    books.store(new_epoch_alert("pad-a", EPOCH_B, EPOCH_A), env("pad-a", 2, epoch=EPOCH_B))
    books.store(env("pad-a", 3, epoch=EPOCH_B))
    books.acct.tick()
    assert books.acks("pad-a")[-1] == {"seq": 3, "epoch": EPOCH_B}
    assert books.acct.stored == 13 and books.acct.duplicates == 0
    assert books.rows(gaps) == [] and books.commands("resend") == []
    by_epoch = {s.epoch: (s.first_seq, s.acked_seq) for s in books.rows(streams)}
    assert by_epoch == {EPOCH_A: (1, 10), EPOCH_B: (1, 3)}
    (d,) = books.rows(devices)
    assert (d.epoch, d.acked_seq) == (EPOCH_B, 3)
    # a late event of the old epoch is accounted there; the ack stays with the current one
    books.store(env("pad-a", 11, epoch=EPOCH_A))
    assert books.acks("pad-a")[-1] == {"seq": 3, "epoch": EPOCH_B}
    assert {s.epoch: s.acked_seq for s in books.rows(streams)}[EPOCH_A] == 11


def test_a_gap_that_does_not_fill_is_asked_for_in_its_epoch_and_closed_as_lost(engine) -> None:
    books = Books(engine, gap_timeout_s=0.0)
    books.store(*[env("pad-a", i) for i in (1, 2, 3, 7)])
    (g,) = books.rows(gaps)
    assert (g.first_seq, g.last_seq, g.state, g.epoch) == (4, 6, "open", EPOCH_A)
    books.acct.tick()
    ((topic, body),) = books.commands("resend")
    assert topic == "careterm/main/pad-a/cmd/resend"
    assert (body["from"], body["to"], body["epoch"]) == (4, 6, EPOCH_A)
    reply = {
        "cid": body["cid"],
        "ok": True,
        "result": {"from": 4, "to": 6, "count": 1, "missing": [[4, 5]]},
    }
    books.store(env("pad-a", 6), raw=[("careterm/main/pad-a/reply", reply)])
    (g,) = books.rows(gaps)
    assert (g.state, g.lost) == ("lost", [[4, 5]])
    assert books.acks("pad-a")[-1] == {"seq": 7, "epoch": EPOCH_A}


def test_a_device_older_than_the_database_is_collected_from_its_oldest_event(engine) -> None:
    books = Books(engine, gap_timeout_s=0.0)
    books.store(*[env("kiosk-1", i) for i in (41, 42)])
    assert books.acks("kiosk-1") == []
    books.acct.tick()
    ((_, body),) = books.commands("resend")
    assert (body["from"], body["to"]) == (1, 40)
    reply = {"cid": body["cid"], "ok": True, "result": {"count": 2, "missing": [[1, 38]]}}
    books.store(
        *[env("kiosk-1", i) for i in (39, 40)], raw=[("careterm/main/kiosk-1/reply", reply)]
    )
    (g,) = books.rows(gaps)
    assert (g.state, g.lost) == ("before", [[1, 38]])  # gone before this database existed
    assert books.acks("kiosk-1")[-1] == {"seq": 42, "epoch": EPOCH_A}


def test_reasons_reach_their_rating_in_either_order_and_only_from_the_same_device(engine) -> None:
    books = Books(engine)
    r1 = env("pad-a", 1, data=rating(1, reason_asked=True))
    reason1 = env(
        "pad-a",
        2,
        "reason",
        {"rating": r1["id"], "window": "W03", "staff": "E1024", "reason": "等候时间长"},
    )
    books.store(r1)
    books.store(reason1)
    r2 = env("pad-a", 4, data=rating(1, reason_asked=True))
    reason2 = env(
        "pad-a", 3, "reason", {"rating": r2["id"], "window": "W03", "staff": None, "reason": "其他"}
    )
    books.store(reason2)
    books.store(r2)
    forged = env(
        "pad-b", 1, "reason", {"rating": r1["id"], "window": "W09", "staff": None, "reason": "x"}
    )
    books.store(forged)
    got = {r.event_id: (r.reason, r.reason_asked) for r in books.rows(ratings)}
    assert got == {r1["id"]: ("等候时间长", True), r2["id"]: ("其他", True)}


def test_prompts_telemetry_and_status_are_kept_for_the_console(engine) -> None:
    books = Books(engine)
    closed = env(
        "pad-a",
        1,
        "prompt",
        {"prompt": "p-1", "ticket": "A012", "window": "W03", "staff": None, "outcome": "expired"},
    )
    tele = {
        "v": 1,
        "ts": "2026-11-23T09:42:00.000+08:00",
        "uptime_s": 12.5,
        "outbox_depth": 3,
        "oldest_pending_s": 1.5,
        "printer": None,
        "card_reader": {"state": "ok"},
        "buttons": {"state": "fault", "detail": "unplugged"},
        "clock_synced": False,
    }
    status = {"v": 1, "state": "online", "role": "rating_pad", "version": "0.2.0", "session": 3}
    books.store(
        closed,
        raw=[("careterm/main/pad-a/telemetry", tele), ("careterm/main/pad-a/status", status)],
    )
    (p,) = books.rows(prompts)
    assert (p.prompt, p.ticket, p.outcome, p.window) == ("p-1", "A012", "expired", "W03")
    (t,) = books.rows(telemetry)
    assert (t.outbox_depth, t.buttons, t.clock_synced) == (
        3,
        {"state": "fault", "detail": "unplugged"},
        False,
    )
    (d,) = books.rows(devices)
    assert (d.state, d.version, d.role, d.session) == ("online", "0.2.0", "rating_pad", 3)
    assert d.state_since is not None and d.last_event_at is not None
    tele2 = {**tele, "outbox_depth": 0}
    books.store(raw=[("careterm/main/pad-a/telemetry", tele2)])
    assert [t.outbox_depth for t in books.rows(telemetry)] == [0]


def test_alerts_are_queued_for_the_forwarder_in_storing_order_per_device(engine) -> None:
    books = Books(engine)

    def alert(dev: str, seq: int | None, kind: str) -> dict[str, Any]:
        return env(dev, seq, "alert", {"kind": kind, "severity": "warning", "message": kind})

    a = [alert("pad-a", 2, "dissatisfied"), alert("pad-a", 1, "printer")]
    books.store(*a, alert("pad-b", 1, "help"))
    books.store(alert("pad-a", None, "storage"), a[0])  # a[0] again: no second place
    rows = books.rows(alert_deliveries)
    per = sorted((r.device, r.n, r.event_id) for r in rows)
    assert [(d, n) for d, n, _ in per] == [("pad-a", 1), ("pad-a", 2), ("pad-a", 3), ("pad-b", 1)]
    assert [e for d, _, e in per if d == "pad-a"][:2] == [a[1]["id"], a[0]["id"]]


def test_duplicates_are_counted_once_and_stored_once(engine) -> None:
    books = Books(engine)
    e = env("pad-a", 1)
    books.store(e, e)
    books.store(e)
    assert (books.acct.stored, books.acct.duplicates) == (1, 2)


def test_a_reused_seq_is_reported(engine, caplog) -> None:
    books = Books(engine)
    books.store(*[env("pad-a", i, epoch=None) for i in range(1, 4)])
    with caplog.at_level("ERROR"):
        books.store(env("pad-a", 2, epoch=None))  # a new id under an acked seq
    assert "already used by other events" in caplog.text


def test_timers_ping_online_devices_and_republish_acks(engine) -> None:
    books = Books(engine)
    status = {"v": 1, "state": "online", "session": 1}
    books.store(env("pad-a", 1), raw=[("careterm/main/pad-a/status", status)])
    books.sent.clear()
    books.acct.acked_here.clear()
    books.acct.republish = True
    books.acct.tick()
    assert [b for t, b, _ in books.sent if t.endswith("/ack")] == [{"seq": 1, "epoch": EPOCH_A}]
    assert len(books.commands("ping")) == 1
    books.acct.tick()
    assert len(books.commands("ping")) == 1  # not again before the interval
    time.sleep(0)  # (the interval is 300 s)


def test_events_carried_into_a_new_epoch_count_there_without_being_stored_twice(engine) -> None:
    """A device whose outbox rotates (SPEC 9.2) carries the events it still holds into the
    new epoch with new seqs and their own ids: stored once, accounted in both epochs."""
    books = Books(engine, gap_timeout_s=0.0)
    first = [env("pad-a", i, epoch=EPOCH_A) for i in range(1, 6)]
    books.store(*first)
    carried = [
        {**first[3], "epoch": EPOCH_B, "seq": 1},
        {**first[4], "epoch": EPOCH_B, "seq": 2},
    ]
    books.store(*carried, env("pad-a", 3, epoch=EPOCH_B))
    books.acct.tick()
    assert books.acct.stored == 6 and books.acct.duplicates == 2
    assert {s.epoch: s.acked_seq for s in books.rows(streams)} == {EPOCH_A: 5, EPOCH_B: 3}
    assert books.acks("pad-a")[-1] == {"seq": 3, "epoch": EPOCH_B}
    assert books.rows(gaps) == [] and books.commands("resend") == []


def test_gaps_of_an_epoch_the_device_has_left_are_closed_as_superseded(engine) -> None:
    books = Books(engine, gap_timeout_s=0.0)
    books.store(*[env("pad-a", i, epoch=EPOCH_A) for i in (1, 2, 5)])
    books.store(*[env("pad-a", i, epoch=EPOCH_B) for i in (1, 2, 4)])
    books.acct.tick()
    resends = {b["epoch"]: b for _, b in books.commands("resend")}
    # the device refuses the old epoch's resend ...
    refusal = {
        "cid": resends[EPOCH_A]["cid"],
        "ok": False,
        "error": f"epoch {EPOCH_A} is not this outbox's epoch ({EPOCH_B})",
    }
    books.store(raw=[("careterm/main/pad-a/reply", refusal)])
    by_epoch = {g.epoch: g.state for g in books.rows(gaps)}
    assert by_epoch == {EPOCH_A: "superseded", EPOCH_B: "open"}
    # ... and a ping naming its epoch closes what is still open of other epochs
    books.store(*[env("pad-a", i, epoch=EPOCH_A) for i in (7,)])  # a late one: gap 6
    ping = {"cid": "site-ping-1", "ok": True, "result": {"epoch": EPOCH_B, "last_seq": 4}}
    books.store(raw=[("careterm/main/pad-a/reply", ping)])
    states = sorted((g.epoch, g.first_seq, g.state) for g in books.rows(gaps))
    assert states == [(EPOCH_A, 3, "superseded"), (EPOCH_A, 6, "superseded"), (EPOCH_B, 3, "open")]
    (d,) = books.rows(devices)
    assert d.epoch == EPOCH_B


@pytest.mark.parametrize("told", ["storage alert", "event ids"])
def test_an_older_epoch_seen_first_after_the_current_one_never_takes_over(engine, told) -> None:
    """Audit #2: another collector (or a broker session) hands over the old epoch's events
    after the new epoch's. The current epoch follows what the device said (its storage
    alert naming the previous epoch, else the order it made its events in), not arrival."""
    books = Books(engine, gap_timeout_s=0.0)
    old = [env("pad-a", i, epoch=EPOCH_A) for i in (1, 2, 3)]  # made first
    if told == "storage alert":
        head = new_epoch_alert("pad-a", EPOCH_B, EPOCH_A)
    else:
        head = env("pad-a", 1, epoch=EPOCH_B)
    books.store(head, env("pad-a", 2, epoch=EPOCH_B))
    books.store(*old)  # first seen now: older all the same
    books.store(*[env("pad-a", i, epoch=EPOCH_B) for i in (3, 4)])
    (d,) = books.rows(devices)
    assert (d.epoch, d.acked_seq) == (EPOCH_B, 4)
    assert [a["epoch"] for a in books.acks("pad-a")] == [EPOCH_B, EPOCH_B]
    assert books.acks("pad-a")[-1] == {"seq": 4, "epoch": EPOCH_B}
    assert {s.epoch: s.acked_seq for s in books.rows(streams)} == {EPOCH_A: 3, EPOCH_B: 4}


def test_a_ping_answer_that_corrects_the_current_epoch_publishes_its_ack(engine) -> None:
    """Audit #2: the device's answer to `ping` names its epoch; when that corrects the
    site's idea of the current epoch, the ack of that epoch goes out at once (it was
    stored and accounted already, so no new event would trigger it)."""
    books = Books(engine)
    current = [env("pad-a", i, epoch=EPOCH_B) for i in (1, 2)]  # (ids made before A's)
    books.store(*current)
    books.store(*[env("pad-a", i, epoch=EPOCH_A) for i in (1, 2, 3)])  # looks newer
    (d,) = books.rows(devices)
    assert d.epoch == EPOCH_A and d.ping_at is None  # unsure: the device is asked
    books.sent.clear()
    ping = {"cid": "site-ping-1", "ok": True, "result": {"epoch": EPOCH_B, "last_seq": 2}}
    books.store(raw=[("careterm/main/pad-a/reply", ping)])
    assert books.acks("pad-a") == [{"seq": 2, "epoch": EPOCH_B}]
    (d,) = books.rows(devices)
    assert (d.epoch, d.acked_seq) == (EPOCH_B, 2)


def test_an_event_id_already_stored_for_another_device_is_refused_not_acked(engine, caplog) -> None:
    """Audit #4: device vb sends the id of va's next event (a cloned outbox, a broken id
    generator). va's event is not stored, so va must not be acked for it: refused,
    counted, logged once per device; never recorded as carried into a new epoch."""
    books = Books(engine)
    books.store(env("va", 1))
    va2 = env("va", 2, data=rating(1))
    books.store(env("vb", 1, eid=va2["id"]))
    with caplog.at_level("ERROR", logger="careterm.collect"):
        books.store(va2)
        books.store(va2)  # the device sends it again: refused again, logged once
        books.store(env("vc", 1, eid="clash-1"), env("vd", 1, eid="clash-1"))  # one batch
    assert books.acks("va") == [{"seq": 1, "epoch": EPOCH_A}]
    assert books.rows(seq_aliases) == []
    assert {r.device: r.score for r in books.rows(ratings)} == {"va": 4, "vb": 4, "vc": 4}
    assert books.acct.rejected == 3 and books.acct.duplicates == 0
    assert caplog.text.count("stored here for device vb") == 1
    assert caplog.text.count("vd sent event clash-1") == 1


def test_an_ack_published_late_by_one_collector_never_goes_below_another_ones(engine) -> None:
    """Audit #6: collector A commits seq 1-3, collector B commits 4-6 and publishes ack 6,
    then A publishes: it publishes what the database holds now (6), not its own 3, which
    would have left the retained ack behind."""
    if engine.dialect.name != "postgresql":
        pytest.skip("several collectors share a database on PostgreSQL (SPEC 9.5)")
    col_a, col_b = Books(engine), Books(engine)
    col_b.sent = col_a.sent  # one broker: the retained ack is the last one published
    first = col_a.batch(*[env("pad-a", i) for i in (1, 2, 3)])
    out = col_a.acct._transaction(lambda conn: col_a.acct._store(conn, first))
    col_b.store(*[env("pad-a", i) for i in (4, 5, 6)])
    col_a.acct._after_commit(out)  # A's publish reaches the broker only now
    assert col_a.acks("pad-a")[-1] == {"seq": 6, "epoch": EPOCH_A}


def test_timers_publish_recent_acks_again_so_a_stale_retained_ack_heals(engine) -> None:
    """Audit #6: what slips through anyway (another collector's lower ack reaching the
    broker last) is healed: the timers publish recently active devices' acks again, even
    the ones this collector published already."""
    books = Books(engine)
    books.store(*[env("pad-a", i) for i in (1, 2, 3)])
    books.acct.tick()  # the first tick: acks of this connection (none new)
    books.sent.append(("careterm/main/pad-a/ack", {"seq": 1, "epoch": EPOCH_A}, True))
    books.acct.tick()
    assert books.acks("pad-a")[-1] == {"seq": 1, "epoch": EPOCH_A}  # not due yet
    books.acct.heal_at = 0.0
    books.acct.tick()
    assert books.acks("pad-a")[-1] == {"seq": 3, "epoch": EPOCH_A}
