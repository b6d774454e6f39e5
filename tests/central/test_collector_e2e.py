"""Device -> broker -> collector -> database, with the faults the site must survive."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from central.db import devices, events, gaps, metadata, ratings, sessions
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker]


def rating(i: int, window: str = "W03") -> dict:
    return {
        "window": window,
        "staff": "E1024",
        "score": 1 + i % 4,
        "scale": 4,
        "label": "x",
        "reason": None,
        "prompt": None,
        "misuse": False,
        "response_ms": 1000 + i,
    }


def db_count(url: str, device: str | None = None) -> int:
    eng = create_engine(url)
    metadata.create_all(eng)
    q = select(func.count()).select_from(events)
    if device:
        q = q.where(events.c.device == device)
    with eng.connect() as c:
        n = c.execute(q).scalar_one()
    eng.dispose()
    return n


def db_rows(url: str, table, *where):
    eng = create_engine(url)
    with eng.connect() as c:
        rows = c.execute(select(table).where(*where)).all()
    eng.dispose()
    return rows


def outbox_empty(up) -> bool:
    st = up.outbox.stats()
    return st.waiting == 0 and st.sent_unacked == 0


def test_events_stored_once_and_outbox_emptied_by_the_site_ack(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a").start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: up.link.connected.is_set(), 10, what="device connected")
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    for i in range(20):
        up.record("rating", rating(i))
    wait_for(lambda: db_count(db) == 20, 20, what="20 events in the database")
    wait_for(lambda: outbox_empty(up), 15, what="outbox emptied by the site ack")
    assert up.outbox.stats().site_acked_seq == 20
    rows = db_rows(db, ratings)
    assert sorted(r.response_ms for r in rows) == [1000 + i for i in range(20)]
    dev = db_rows(db, devices)[0]
    assert (dev.first_seq, dev.acked_seq, dev.state) == (1, 20, "online")
    assert db_rows(db, gaps) == []


FAST = ("--gap-timeout", "1", "--ping-interval", "1")


def test_collector_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", *FAST).start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    import threading

    def produce() -> None:
        for i in range(300):
            up.record("rating", rating(i))
            time.sleep(0.005)

    t = threading.Thread(target=produce)
    t.start()
    wait_for(lambda: db_count(db) >= 60, 20, what="first events stored")
    col.kill()
    assert db_count(db) < 300  # killed mid-stream
    time.sleep(0.5)
    col.start()
    t.join(30)
    wait_for(lambda: db_count(db) == 300, 40, what="all 300 events stored")
    wait_for(lambda: outbox_empty(up), 20, what="outbox emptied")
    seqs = sorted(json.loads(r.payload)["seq"] for r in db_rows(db, events))
    assert seqs == list(range(1, 301))
    assert db_rows(db, devices)[0].acked_seq == 300


def _stop_collect_lose_in_broker(broker, up, col, db: str, n_before: int, n_lost: int) -> None:
    """Events 1..n_before reach the database; n_lost more are PUBACKed, then the broker dies."""
    for i in range(n_before):
        up.record("rating", rating(i))
    wait_for(lambda: db_count(db) == n_before, 15, what="first events stored")
    wait_for(lambda: up.outbox.stats().site_acked_seq == n_before, 10, what="first ack")
    assert col.stop() == 0
    for i in range(n_lost):
        up.record("rating", rating(n_before + i))
    # PUBACKed by the broker (kept in memory for the collector's session), not yet acked by the site
    wait_for(lambda: up.outbox.stats().waiting == 0, 10, what="broker PUBACKed the events")
    assert up.outbox.stats().sent_unacked == n_lost
    broker.restart()  # no persistence: the queued events are gone
    wait_for(
        lambda: up.link.connected.is_set() and up.link.state.connects >= 2,
        15,
        what="device reconnected",
    )


def test_events_lost_by_a_restarted_broker_come_back_through_resend(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(
        broker.url, db, "--client-id", "col-a", "--gap-timeout", "1", "--ping-interval", "3600"
    ).start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    _stop_collect_lose_in_broker(broker, up, col, db, 3, 5)
    col.start()
    wait_for(lambda: col.output().count("subscribed") >= 2, 15, what="collector back")
    up.record("rating", rating(8))  # seq 9 reveals the gap 4..8
    wait_for(lambda: db_count(db) == 9, 30, what="gap filled by resend")
    wait_for(lambda: db_rows(db, gaps)[0].state == "filled", 10, what="gap closed")
    g = db_rows(db, gaps)
    assert [(x.first_seq, x.last_seq, x.state, x.resends >= 1) for x in g] == [
        (4, 8, "filled", True)
    ]
    wait_for(lambda: outbox_empty(up), 15, what="outbox emptied")
    assert "resend asked" in col.output()


def test_a_lost_tail_is_found_by_ping_and_resent(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", *FAST).start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    _stop_collect_lose_in_broker(broker, up, col, db, 2, 4)
    col.start()  # no new event: only the device's answer to ping shows seq 3..6 exist
    wait_for(lambda: db_count(db) == 6, 30, what="tail recovered")
    wait_for(lambda: outbox_empty(up), 15, what="outbox emptied")
    wait_for(lambda: db_rows(db, gaps)[0].state == "filled", 10, what="gap closed")
    assert [(x.first_seq, x.last_seq, x.state) for x in db_rows(db, gaps)] == [(3, 6, "filled")]


def test_an_unfillable_gap_is_recorded_as_lost_and_reported(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    from tests.conftest import run_careterm

    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(
        broker.url, db, "--client-id", "col-a", "--gap-timeout", "1", "--ping-interval", "3600"
    ).start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    _stop_collect_lose_in_broker(broker, up, col, db, 3, 5)
    # a wrong ack (or expiry) made the device forget seq 4..6
    up.outbox.site_ack(6, up.outbox.epoch)
    col.start()
    wait_for(lambda: col.output().count("subscribed") >= 2, 15, what="collector back")
    up.record("rating", rating(8))  # seq 9
    wait_for(
        lambda: db_rows(db, gaps) and db_rows(db, gaps)[0].state == "lost",
        30,
        what="gap closed as lost",
    )
    g = db_rows(db, gaps)[0]
    assert (g.first_seq, g.last_seq, g.lost) == (4, 8, [[4, 6]])
    assert sorted(json.loads(r.payload)["seq"] for r in db_rows(db, events)) == [1, 2, 3, 7, 8, 9]
    wait_for(lambda: outbox_empty(up), 15, what="ack moved past the lost events")
    r = run_careterm("site", "gaps", "--db", db)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout.splitlines()[0])
    assert (line["device"], line["state"], line["lost"], line["lost_events"]) == (
        "pad-w03",
        "lost",
        [[4, 6]],
        3,
    )


def test_a_device_that_ran_before_the_site_saw_it_is_collected_from_its_oldest_event(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    up = device_factory("kiosk-01", broker.url)
    wait_for(lambda: up.link.connected.is_set(), 10, what="device connected")
    for i in range(5):  # nobody subscribed yet: the broker drops them after its PUBACK
        up.record(
            "checkin",
            {
                "appointment": f"A-{i}",
                "department_id": "cardio",
                "queue_no": f"B{i:03d}",
                "card_kind": "id_card",
                "token": "t",
                "timing": "on_time",
                "ticket": "printed",
                "repeat": False,
            },
        )
    wait_for(lambda: up.outbox.stats().waiting == 0, 10, what="PUBACKs")
    col = collector_factory(broker.url, db, "--client-id", "col-a", *FAST).start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    up.record("checkin", {"appointment": "A-5"})
    wait_for(lambda: db_count(db) == 6, 20, what="older events collected")
    wait_for(lambda: outbox_empty(up), 15, what="outbox emptied")
    assert db_rows(db, devices)[0].acked_seq == 6


def test_duplicates_malformed_payloads_and_null_seq_alerts(
    broker, subscriber_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", *FAST).start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    pub = subscriber_factory(broker.port, ["careterm/main/pad-x/ack"])
    base = "careterm/main/pad-x"
    env = {
        "v": 1,
        "id": "0193a1b2-0000-7000-8000-000000000001",
        "seq": 1,
        "device": "pad-x",
        "site": "main",
        "type": "rating",
        "ts": "2026-11-23T09:41:12.345+08:00",
        "clock_synced": True,
        "data": rating(3),
    }
    pub.publish(f"{base}/events/rating", env)
    pub.publish(f"{base}/events/rating", env)  # a DUP after a reconnect
    pub.publish(f"{base}/events/rating", b"\xff not json")
    pub.publish(f"{base}/events/rating", {"id": "x2", "seq": "seven", "type": "rating", "data": {}})
    pub.publish(f"{base}/events/rating", [1, 2, 3])
    storage = {
        **env,
        "id": "0193a1b2-0000-7000-8000-000000000002",
        "seq": None,
        "type": "alert",
        "data": {"kind": "storage", "severity": "critical", "message": "disk", "durable": False},
    }
    pub.publish(f"{base}/alerts/storage", storage)
    env2 = {**env, "id": "0193a1b2-0000-7000-8000-000000000003", "seq": 2}
    pub.publish(f"{base}/events/rating", env2)
    wait_for(lambda: db_count(db) == 3, 15, what="three distinct events")
    wait_for(
        lambda: pub.payloads("/ack") and pub.payloads("/ack")[-1] == {"seq": 2},
        10,
        what="ack seq 2",
    )
    assert col.proc is not None and col.proc.poll() is None
    assert len(db_rows(db, ratings)) == 2
    alert = db_rows(db, events, events.c.seq.is_(None))[0]
    assert (alert.kind, alert.type) == ("storage", "alert")
    assert db_rows(db, gaps) == []
    # three refused payloads from one device: logged once, all counted
    assert col.output().count("refused a payload that is not the contract's from pad-x") == 1
    assert col.stop() == 0
    assert "1 duplicates, 3 refused (3 payload)" in col.output()


def test_a_late_will_from_an_older_session_does_not_override_online(
    broker, subscriber_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", *FAST).start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    pub = subscriber_factory(broker.port, ["careterm/main/pad-y/cmd/#"])
    topic = "careterm/main/pad-y/status"

    def st(state: str, reason, session: int) -> dict:
        return {
            "v": 1,
            "state": state,
            "reason": reason,
            "role": "rating_pad",
            "version": "0.1.0",
            "session": session,
            "ts": "2026-11-23T09:00:00+08:00",
        }

    def dev():
        rows = db_rows(db, devices, devices.c.device == "pad-y")
        return rows[0] if rows else None

    pub.publish(topic, st("online", None, 5), retain=True)
    wait_for(lambda: dev() and dev().state == "online", 10, what="online")
    pub.publish(topic, st("offline", "lost", 4), retain=True)  # the Will of session 4, late
    time.sleep(1.0)
    assert (dev().state, dev().session) == ("online", 5)
    pub.publish(topic, st("offline", "shutdown", 5), retain=True)
    wait_for(lambda: dev().state == "offline", 10, what="offline")
    assert dev().reason == "shutdown"
    s = {r.session: r for r in db_rows(db, sessions, sessions.c.device == "pad-y")}
    assert s[4].offline_reason == "lost" and s[5].offline_reason == "shutdown"
    assert s[5].online_ts is not None


def test_two_collectors_in_one_group_share_the_load_and_store_each_event_once(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    cols = [
        collector_factory(broker.url, db, "--client-id", f"col-{n}", *FAST).start() for n in "ab"
    ]
    for c in cols:
        wait_for(lambda c=c: "subscribed" in c.output(), 15, what="collector connected")
    ups = [device_factory(f"pad-w0{i}", broker.url) for i in range(1, 4)]
    for i in range(60):
        for up in ups:
            up.record("rating", rating(i))
    wait_for(lambda: db_count(db) == 180, 30, what="180 events stored")
    for up in ups:
        wait_for(lambda up=up: outbox_empty(up), 20, what="outbox emptied")
    stored = []
    for c in cols:
        assert c.stop() == 0
        line = next(x for x in c.output().splitlines() if "stopped;" in x)
        stored.append(int(line.split("stopped; ")[1].split()[0]))
        assert "ERROR" not in c.output()
    assert sum(stored) == 180 and min(stored) > 0  # both did part of the work, none twice
    assert sorted(d.acked_seq for d in db_rows(db, devices)) == [60, 60, 60]
    assert db_rows(db, gaps) == []  # out-of-order arrivals over two collectors are not gaps


def test_a_collector_of_the_group_that_dies_for_good_costs_no_event(
    broker, device_factory, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    a, b = (
        collector_factory(
            broker.url, db, "--client-id", f"col-{n}", "--session-expiry", "2", *FAST
        ).start()
        for n in "ab"
    )
    for c in (a, b):
        wait_for(lambda c=c: "subscribed" in c.output(), 15, what="collector subscribed")
    up = device_factory("pad-w03", broker.url)
    for i in range(10):
        up.record("rating", rating(i))
    wait_for(lambda: db_count(db) == 10, 15, what="first events")
    b.kill()  # its session lives on for 2 s and takes a share of the events meanwhile
    for i in range(10, 40):
        up.record("rating", rating(i))
    wait_for(lambda: db_count(db) == 40, 40, what="every event, through resend")
    wait_for(lambda: outbox_empty(up), 20, what="outbox emptied")
    assert "resend asked" in a.output()


def test_two_collectors_with_one_client_id_are_told_apart_in_the_log(
    broker, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    a = collector_factory(broker.url, db, "--client-id", "same").start()
    wait_for(lambda: "subscribed" in a.output(), 15, what="first collector subscribed")
    b = collector_factory(broker.url, db, "--client-id", "same").start()
    wait_for(
        lambda: "Give every collector its own certificate" in a.output() + b.output(),
        20,
        what="session takeover explained",
    )
    # both back off instead of kicking each other out many times a second
    assert (a.output() + b.output()).count("connected to") < 8


def test_collect_names_a_database_it_cannot_use() -> None:
    from tests.conftest import run_careterm

    r = run_careterm(
        "site",
        "collect",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--db",
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
        timeout=60,
    )
    assert r.returncode == 2
    assert "--db postgresql+psycopg://postgres@127.0.0.1:1/nowhere" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_careterm("site", "collect", "--broker", "mqtt://127.0.0.1:1", "--db", "oracle://x/y")
    assert r.returncode == 2 and "use sqlite:///path.db or postgresql+psycopg://" in r.stderr
