"""What the console shows, computed exactly, on SQLite and PostgreSQL: today's satisfaction and
response rate (SPEC 9.3), alerts with acknowledgements and reasons, device health."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from central.dashboard.data import ConsoleData, Thresholds
from central.db import alert_acks
from tests.central.dashboard.site_data import (
    TZ,
    Device,
    rating,
    site_now,
    store_envelopes,
    store_status,
    store_telemetry,
)


def console(engine, **kw) -> ConsoleData:
    return ConsoleData(engine, tz=TZ, staff_names={"E1001": "王芳"}, **kw)


def test_today_per_window_and_staff_counts_prompts_and_never_misuse(engine) -> None:
    now = site_now()
    at = now - 600
    w1, w2, w3 = Device("pad-w01"), Device("pad-w02"), Device("pad-w03")
    prompts = [str(uuid.uuid4()) for _ in range(4)]
    for p, score in zip(prompts, (4, 4, 3, 1), strict=True):
        w1.event("rating", rating("W01", "E1001", score, p, response_ms=2000 + score), at)
    # A second press for a prompt already rated, and a press with no prompt open: misuse.
    w1.event("rating", rating("W01", "E1001", 1, prompts[0], misuse=True), at)
    w1.event("rating", rating("W01", "E1001", 1, None, misuse=True), at)
    for outcome in ("expired", "superseded"):
        w1.event(
            "prompt",
            {
                "prompt": str(uuid.uuid4()),
                "ticket": None,
                "window": "W01",
                "staff": "E1001",
                "outcome": outcome,
            },
            at,
        )
    w2.event("rating", rating("W02", "E1002", 4, None), at)  # free mode: no prompt
    w2.event("rating", rating("W02", "E1002", 1, None), now - 86400 * 2)  # another day
    w3.event(
        "prompt",
        {
            "prompt": str(uuid.uuid4()),
            "ticket": None,
            "window": "W03",
            "staff": "E1003",
            "outcome": "expired",
        },
        at,
    )
    store_envelopes(engine, w1.envelopes + w2.envelopes + w3.envelopes)

    snap = console(engine).snapshot(now)
    rows = {r.key: r for r in snap.windows}
    assert set(rows) == {"W01", "W02", "W03"}
    w = rows["W01"]
    assert (w.rated, w.misuse, w.low, w.satisfied_pct) == (4, 2, 1, 75.0)
    assert (w.prompts, w.prompted, w.response_pct) == (6, 4, 66.7)
    assert w.scores == {1: 1, 2: 0, 3: 1, 4: 2, 5: 0}
    assert w.median_response_ms == 2003
    assert (rows["W02"].rated, rows["W02"].satisfied_pct, rows["W02"].response_pct) == (
        1,
        100.0,
        None,
    )
    assert (rows["W03"].rated, rows["W03"].prompts, rows["W03"].response_pct) == (0, 1, 0.0)
    staff = {r.key: r for r in snap.staff}
    assert staff["E1001"].name == "王芳" and staff["E1001"].response_pct == 66.7
    assert staff["E1002"].name is None
    t = snap.total
    assert (t.rated, t.low, t.prompts, t.prompted) == (5, 1, 7, 4)
    assert t.satisfied_pct == 80.0 and t.response_pct == 57.1


def test_alerts_open_first_by_severity_with_the_reason_that_followed(engine) -> None:
    now = site_now()
    pad, kiosk = Device("pad-w03"), Device("kiosk-01", "kiosk")
    p = str(uuid.uuid4())
    rid = pad.event("rating", rating("W03", "E1003", 1, p), now - 300)
    low = pad.alert(
        "dissatisfied",
        "warning",
        "W03: 不满意",
        now - 300,
        window="W03",
        staff="E1003",
        score=1,
        scale=4,
        label="不满意",
        reason=None,
        prompt=p,
    )
    pad.event(
        "reason",
        {"rating": rid, "window": "W03", "staff": "E1003", "reason": "等候时间长"},
        now - 290,
    )
    paper = kiosk.alert("printer", "critical", "paper out", now - 200)
    info = kiosk.alert("clock", "info", "clock synced again", now - 100)
    old = kiosk.alert("printer", "warning", "paper near end", now - 86400 * 9)
    store_envelopes(engine, pad.envelopes + kiosk.envelopes)

    data = console(engine)
    snap = data.snapshot(now)
    assert snap.open_alerts == 3  # the nine-day-old one is past --alert-days 7
    assert [a.id for a in snap.alerts] == [paper, low, info]
    a = snap.alerts[1]
    assert (a.kind, a.window, a.staff, a.score, a.reason) == (
        "dissatisfied",
        "W03",
        "E1003",
        1,
        "等候时间长",
    )
    assert old not in {x.id for x in snap.alerts}

    assert data.acknowledge(paper, "wang", now=now - 10) == ("wang", now - 10)
    assert data.acknowledge(paper, "li", now=now) == ("wang", now - 10)  # the first one stays
    assert data.acknowledge(rid, "wang") is None  # a rating is not an alert
    assert data.acknowledge("no-such-id", "wang") is None
    snap = data.snapshot(now)
    assert snap.open_alerts == 2
    assert [a.id for a in snap.alerts] == [low, info, paper]  # acknowledged ones last
    assert (snap.alerts[-1].acked_by, snap.alerts[-1].acked_at) == ("wang", now - 10)
    with engine.connect() as c:
        assert c.execute(select(alert_acks.c.event_id, alert_acks.c.acked_by)).all() == [
            (paper, "wang")
        ]


def test_device_health_from_status_and_telemetry(engine) -> None:
    now = time.time()  # not a day's figures: the collector's receive times are the real clock
    ok, faulty, gone = Device("kiosk-01", "kiosk"), Device("kiosk-02", "kiosk"), Device("pad-w01")
    for d in (ok, faulty, gone):
        d.event("staff", {"window": "W01", "action": "sign_in", "staff": "E1001"}, now - 100)
    faulty.seq += 2  # seqs 2-3 never arrived: an open gap
    faulty.event("staff", {"window": "W01", "action": "pause", "staff": "E1001"}, now - 90)
    store_envelopes(engine, ok.envelopes + faulty.envelopes + gone.envelopes)
    store_status(
        engine, "kiosk-01", "online", 4, now - 3000, role="kiosk", version="0.2.0", seen=now - 3000
    )
    store_status(engine, "kiosk-02", "online", 1, now - 3000, role="kiosk")
    store_status(engine, "pad-w01", "online", 7, now - 5000)
    store_status(engine, "pad-w01", "offline", 7, now - 5000, reason="lost", seen=now - 120)
    store_telemetry(engine, "kiosk-01", now - 5, printer="ok", buttons=None)
    store_telemetry(
        engine,
        "kiosk-02",
        now + 300,
        printer={"state": "error", "detail": "缺纸"},
        card_reader="absent",
        cert_days_left=12,
        buttons=None,
        outbox_depth=17,
        oldest_pending_s=900.0,
        clock_synced=False,
    )
    snap = console(engine, thresholds=Thresholds(silent_s=60)).snapshot(now + 1)
    devs = {d.device: d for d in snap.devices}
    assert [d.device for d in snap.devices] == ["pad-w01", "kiosk-02", "kiosk-01"]

    k1 = devs["kiosk-01"]
    assert (k1.state, k1.level, k1.problems, k1.version, k1.role) == (
        "online",
        "ok",
        [],
        "0.2.0",
        "kiosk",
    )
    assert k1.since == now - 3000
    assert (k1.printer, k1.card_reader, k1.buttons, k1.clock_synced) == ("ok", "ok", None, True)

    k2 = devs["kiosk-02"]
    assert k2.level == "warning"
    assert k2.problems == ["printer", "card_reader", "backlog", "clock", "skew", "cert", "gaps"]
    assert (k2.printer, k2.details, k2.cert_days_left) == ("error", {"printer": "缺纸"}, 12)
    assert (k2.outbox_depth, k2.oldest_pending_s, k2.open_gaps) == (17, 900.0, 1)
    assert k2.clock_skew_s is not None and k2.clock_skew_s > 250

    p = devs["pad-w01"]
    assert (p.state, p.reason, p.level) == ("offline", "lost", "critical")
    assert abs(p.since - (now - 120)) < 1  # when the collector saw the Will, not its own ts
    assert snap.online == 2 and [d.device for d in snap.offline] == ["pad-w01"]

    # An online device that has gone quiet is flagged; one that comes back is fresh again.
    later = console(engine, thresholds=Thresholds(silent_s=60)).snapshot(now + 200)
    assert "silent" in {d.device: d for d in later.devices}["kiosk-01"].problems
    store_status(engine, "pad-w01", "online", 8, now, seen=now + 5)
    back = {d.device: d for d in console(engine).snapshot(now + 6).devices}["pad-w01"]
    assert (back.state, back.since) == ("online", now + 5)


def test_snapshot_version_changes_with_content_not_with_time(engine) -> None:
    now = site_now()
    store_status(engine, "pad-w01", "online", 1, now - 60)
    data = console(engine)
    v1 = data.snapshot(now).version()
    assert data.snapshot(now + 1).version() == v1
    store_telemetry(engine, "pad-w01", now, printer=None, buttons="error")
    assert data.snapshot(now + 2).version() != v1
