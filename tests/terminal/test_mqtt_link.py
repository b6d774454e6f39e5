"""The uplink against a real mosquitto: in order, once per id, through broker restarts and commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from terminal.config import DeviceConfig, parse_config
from terminal.mqtt_link import LinkOptions
from terminal.outbox import Faults, StorageError
from terminal.uplink import Uplink

from ..conftest import Broker, wait_for

pytestmark = pytest.mark.broker

BASE = "careterm/main/pad-w03"


def cfg_for(tmp_path: Path, broker: Broker, **device: object) -> DeviceConfig:
    return parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
                **device,
            },
            "mqtt": {"url": broker.url, "keepalive_s": 5},
        }
    )


def fast() -> LinkOptions:
    return LinkOptions(backoff_min_s=0.1, backoff_max_s=0.5, telemetry_interval_s=0.5)


def seqs_of(events: list[dict]) -> list[int]:
    return [e["seq"] for e in events]


def test_events_arrive_in_order_once_with_a_retained_online_status(
    tmp_path, broker, subscriber_factory
):
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    for i in range(300):
        up.record("rating", {"score": 1 + i % 4})
    wait_for(lambda: len(sub.events()) >= 300, what="300 events")
    evs = sub.events()
    assert seqs_of(evs) == list(range(1, 301))
    assert len({e["id"] for e in evs}) == 300
    status = sub.payloads("/status")[0]
    assert status["state"] == "online" and status["session"] == 1 and status["reason"] is None
    assert status["role"] == "rating_pad"
    wait_for(lambda: up.outbox.stats().waiting == 0, what="all PUBACKed")
    assert up.outbox.stats().sent_unacked == 300  # kept until the site acks
    up.stop()
    last = sub.payloads("/status")[-1]
    assert last["state"] == "offline" and last["reason"] == "shutdown" and last["session"] == 1


def test_broker_killed_and_restarted_mid_stream_loses_nothing(tmp_path, broker, subscriber_factory):
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    sub = subscriber_factory(broker.port, [f"{BASE}/events/#"])
    ids = []
    for i in range(600):
        ids.append(up.record("rating", {"n": i}).id)
        if i == 200:
            broker.kill()
        if i == 400:
            broker.start()
            sub.close()
            sub = subscriber_factory(broker.port, [f"{BASE}/events/#"])
    # Events published while the broker was down, or lost in its memory when it was killed,
    # are still in the outbox: the site asks for them with `resend` (or they are still waiting).
    wait_for(lambda: up.outbox.stats().waiting == 0, timeout=60, what="backlog drained")
    stats = up.outbox.stats()
    assert stats.last_seq == 600 and stats.sent_unacked == 600
    got = sub.events()
    assert seqs_of(got) == sorted(seqs_of(got)), "published in seq order after the restart"
    assert max(seqs_of(got)) == 600
    # Anything the killed broker swallowed is recoverable end to end:
    seen = {e["seq"] for e in got}
    sub.publish(f"{BASE}/cmd/resend", {"cid": "r1", "from": 1, "to": 600})
    wait_for(
        lambda: {e["seq"] for e in sub.events()} >= set(range(1, 601)),
        timeout=60,
        what="resend fills every gap",
    )
    assert {e["id"] for e in sub.events()} == set(ids)
    assert seen  # the subscriber saw the live stream too
    up.stop()


def test_site_ack_lets_the_device_forget_and_a_retained_ack_is_read_on_connect(
    tmp_path, broker, subscriber_factory
):
    site = subscriber_factory(broker.port, [f"{BASE}/events/#"])
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    for _ in range(10):
        up.record("rating", {})
    wait_for(lambda: len(site.events()) == 10, what="10 events")
    site.publish(f"{BASE}/ack", {"seq": 7, "epoch": up.outbox.epoch}, retain=True)
    wait_for(lambda: up.outbox.stats().site_acked_seq == 7, what="ack applied")
    assert sorted(e.seq for e in up.outbox.iter_all()) == [8, 9, 10]
    up.stop()
    site.publish(f"{BASE}/ack", {"seq": 10, "epoch": up.outbox.epoch}, retain=True)
    up2 = Uplink(cfg_for(tmp_path, broker), options=fast())
    up2.start()
    wait_for(lambda: up2.outbox.stats().site_acked_seq == 10, what="retained ack read")
    assert list(up2.outbox.iter_all()) == []
    up2.stop()


def test_commands_ping_resend_and_bad_input_get_replies(tmp_path, broker, subscriber_factory):
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    ctl = subscriber_factory(broker.port, [f"{BASE}/reply", f"{BASE}/events/#"])
    first = up.record("rating", {"score": 4})
    up.record("rating", {"score": 3})
    wait_for(lambda: len(ctl.events()) == 2, what="2 events")
    ctl.publish(f"{BASE}/cmd/ping", {"cid": "p1"})
    ctl.publish(f"{BASE}/cmd/resend", {"cid": "r1", "from": 1, "to": 1})
    ctl.publish(f"{BASE}/cmd/resend", {"cid": "r2", "from": 5, "to": 2})
    ctl.publish(f"{BASE}/cmd/ping", b"{not json")  # no cid to answer to: no reply
    ctl.publish(f"{BASE}/cmd/ping", {"no": "cid"})
    ctl.publish(f"{BASE}/cmd/self_destruct", {"cid": "x1"})
    wait_for(lambda: len(ctl.payloads("/reply")) == 4, what="4 replies")
    replies = {r["cid"]: r for r in ctl.payloads("/reply")}
    assert replies["p1"]["ok"] and replies["p1"]["result"]["last_seq"] == 2
    assert replies["r1"]["ok"] and replies["r1"]["result"]["count"] == 1
    assert not replies["r2"]["ok"] and "`to` must be >= `from`" in replies["r2"]["error"]
    assert not replies["x1"]["ok"] and "unknown command" in replies["x1"]["error"]
    wait_for(lambda: len(ctl.events()) == 3, what="resent event")
    again = ctl.events()[-1]
    assert again["seq"] == 1 and again["id"] == first.id
    assert up.link.is_alive()
    up.stop()


def test_commands_sent_while_offline_arrive_after_reconnect(tmp_path, broker, subscriber_factory):
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    up.stop()
    ctl = subscriber_factory(broker.port, [f"{BASE}/reply"])
    ctl.publish(f"{BASE}/cmd/ping", {"cid": "while-away"})
    up2 = Uplink(cfg_for(tmp_path, broker), options=fast())
    up2.start()
    wait_for(
        lambda: any(r["cid"] == "while-away" for r in ctl.payloads("/reply")),
        what="queued command answered",
    )
    up2.stop()


def test_last_will_carries_the_session_of_the_connection_that_died(
    tmp_path, broker, subscriber_factory
):
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    up.stop()
    up2 = Uplink(cfg_for(tmp_path, broker), options=fast())
    up2.start()
    wait_for(up2.link.connected.is_set, what="link connected")
    watcher = subscriber_factory(broker.port, [f"{BASE}/status"])
    wait_for(lambda: watcher.payloads("/status"), what="retained status")
    assert watcher.payloads("/status")[-1]["session"] == 2
    # Cut the TCP connection without a DISCONNECT: the broker publishes the Will.
    up2.link._client.socket().close()
    wait_for(
        lambda: any(p["state"] == "offline" for p in watcher.payloads("/status")),
        what="Will published",
    )
    will = next(p for p in watcher.payloads("/status") if p["state"] == "offline")
    assert will["reason"] == "lost" and will["session"] == 2
    wait_for(lambda: watcher.payloads("/status")[-1]["state"] == "online", what="back online")
    assert watcher.payloads("/status")[-1]["session"] == 3
    up2.stop()


def test_telemetry_reports_depth_and_age(tmp_path, broker, subscriber_factory):
    watcher = subscriber_factory(broker.port, [f"{BASE}/telemetry"])
    up = Uplink(cfg_for(tmp_path, broker), options=fast(), telemetry=lambda: {"buttons": "ok"})
    up.start()
    wait_for(lambda: watcher.payloads("/telemetry"), timeout=10, what="telemetry")
    t = watcher.payloads("/telemetry")[0]
    assert {
        "v",
        "ts",
        "uptime_s",
        "outbox_depth",
        "oldest_pending_s",
        "printer",
        "card_reader",
        "buttons",
        "clock_synced",
    } <= set(t)
    assert t["buttons"] == "ok" and t["outbox_depth"] == 0
    up.stop()


def test_a_backlog_older_than_ten_minutes_raises_an_alert_once_it_can_be_sent(
    tmp_path, broker, subscriber_factory
):
    cfg = cfg_for(tmp_path, broker)
    up = Uplink(cfg, options=fast())
    up.outbox.store("rating", {"score": 2}, ts=time.time() - 900)
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    up.start()
    wait_for(lambda: len(sub.events()) == 2, what="backlog and alert")
    alert = sub.events()[-1]
    assert alert["type"] == "alert" and alert["data"]["kind"] == "outbox_backlog"
    assert alert["data"]["oldest_s"] >= 900
    up.stop()


def test_a_disk_that_refuses_writes_raises_a_storage_alert_and_never_crashes(
    tmp_path, broker, subscriber_factory
):
    faults = Faults()
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    up = Uplink(cfg_for(tmp_path, broker), options=fast(), faults=faults)
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    for _ in range(5):
        up.record("rating", {"score": 4})
    faults.fail("store", "full")
    for _ in range(4):  # later failures do not flood the broker
        with pytest.raises(StorageError) as e:
            up.record("rating", {"score": 1})
        assert e.value.kind == "full"
    wait_for(
        lambda: [e for e in sub.events("alert") if e["data"]["kind"] == "storage"],
        what="storage alert",
    )
    time.sleep(0.3)
    alerts = [e for e in sub.events("alert") if e["data"]["kind"] == "storage"]
    assert len(alerts) == 1
    a = alerts[0]
    assert a["seq"] is None and a["epoch"] == up.outbox.epoch
    assert a["data"]["severity"] == "critical" and a["data"]["durable"] is False
    assert a["data"]["error_kind"] == "full" and "disk full" in a["data"]["error"]
    assert "no transaction" not in json.dumps(a)
    assert up.link.is_alive()
    faults.clear()
    # A durable "works again" alert follows the next event; no refused event was stored.
    ev = up.record("rating", {"score": 4})
    wait_for(lambda: len(sub.events("rating")) == 6, what="stored events delivered")
    assert [e["data"]["score"] for e in sub.events("rating")] == [4] * 6
    assert ev.seq == 6  # the refused events took no seq

    def durable_storage_alerts() -> list[dict]:
        return [
            e
            for e in sub.events("alert")
            if e["data"]["kind"] == "storage" and e["seq"] is not None
        ]

    wait_for(lambda: len(durable_storage_alerts()) == 2, what="reserve and recovery alerts")
    reserve, rec = durable_storage_alerts()
    assert reserve["seq"] == 7 and "reserve" in reserve["data"]["message"]
    assert rec["seq"] == 8 and rec["data"]["failed_events"] == 4
    up.stop()


def test_unreachable_broker_keeps_events_waiting_and_drains_when_it_appears(
    tmp_path, broker_factory, subscriber_factory
):
    b = broker_factory()
    up = Uplink(cfg_for(tmp_path, b), options=fast())
    up.start()
    for i in range(50):
        up.record("rating", {"n": i})
    time.sleep(0.5)
    assert up.outbox.stats().waiting == 50
    assert json.loads(next(up.outbox.iter_all()).payload)["seq"] == 1
    b.start()
    wait_for(lambda: up.outbox.stats().waiting == 0, timeout=15, what="drained")
    assert up.outbox.stats().sent_unacked == 50
    up.stop()


def test_telemetry_shows_days_left_on_the_device_certificate(tmp_path, broker, subscriber_factory):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pad-w03")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=20, hours=1))
        .sign(key, hashes.SHA256())
    )
    crt = tmp_path / "device.crt"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cfg = parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": broker.url, "cert_file": str(crt)},
        }
    )
    watcher = subscriber_factory(broker.port, [f"{BASE}/telemetry"])
    up = Uplink(cfg, options=fast())
    up.start()
    wait_for(lambda: watcher.payloads("/telemetry"), timeout=10, what="telemetry")
    assert watcher.payloads("/telemetry")[0]["cert_days_left"] == 20
    up.stop()


def test_the_link_works_when_its_descriptors_are_above_1024(tmp_path, broker, subscriber_factory):
    """select() fails at fd 1024; a process with many open files must still deliver."""
    import gc
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1300:
        pytest.skip("the hard file limit is too low to open 1,100 descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    # The test's own subscriber uses paho's loop_start(), which itself needs select(): open
    # it before the ballast pushes new descriptors past 1,024.
    sub = subscriber_factory(broker.port, [f"{BASE}/events/#"])
    # Earlier tests' objects closed by the garbage collector would free low descriptors
    # while this test runs: collect them now and hold the collector off until the end.
    gc.collect()
    gc.disable()
    ballast = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        up = Uplink(cfg_for(tmp_path, broker), options=fast())
        up.start()
        wait_for(up.link.connected.is_set, what="link connected")
        assert up.link._client.socket().fileno() >= 1024
        for _ in range(5):
            up.record("rating", {"score": 4})
        wait_for(lambda: len(sub.events()) == 5, what="5 events")
        up.stop()
    finally:
        gc.enable()
        for fd in ballast:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_wait_handed_returns_once_the_event_is_on_the_socket_and_at_once_when_offline(
    tmp_path, broker, subscriber_factory
):
    sub = subscriber_factory(broker.port, [f"{BASE}/events/#"])
    up = Uplink(cfg_for(tmp_path, broker), options=fast())
    up.start()
    try:
        wait_for(up.link.connected.is_set, what="link connected")
        ev = up.record("rating", {"score": 4})
        assert up.wait_handed(ev.seq, 30.0) is True
        wait_for(lambda: seqs_of(sub.events()) == [ev.seq], what="the event at the subscriber")
        assert up.wait_handed(ev.seq + 1, 0.2) is False  # not stored: never handed

        broker.kill()
        wait_for(lambda: not up.link.connected.is_set(), 15, what="link down")
        late = up.record("rating", {"score": 3})
        t0 = time.monotonic()
        assert up.wait_handed(late.seq, 30.0) is False
        assert time.monotonic() - t0 < 5.0  # offline: nobody waits for the bound

        broker.start()
        wait_for(up.link.connected.is_set, 30, what="link back")
        assert up.wait_handed(late.seq, 30.0) is True
    finally:
        up.stop()
