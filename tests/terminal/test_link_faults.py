"""The uplink at the edges against a real mosquitto: broker outages, epochs on the wire, and
exactly one reply to every command whose cid can be read."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from terminal.config import DeviceConfig, parse_config
from terminal.mqtt_link import BACKOFF_MAX_S, LinkOptions
from terminal.outbox import outbox_path
from terminal.payloads import MAX_PAYLOAD_BYTES, Command
from terminal.uplink import Uplink

from ..conftest import Broker, wait_for

pytestmark = pytest.mark.broker

BASE = "careterm/main/pad-w03"


def cfg_for(tmp_path: Path, broker: Broker) -> DeviceConfig:
    return parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": broker.url, "keepalive_s": 5},
        }
    )


def test_reconnect_attempts_go_on_at_least_every_2_s_and_the_backlog_drains(
    tmp_path, broker, subscriber_factory
):
    """Default back-off (no test tuning): a broker down for a while is retried at least every
    ~2 s, so the backlog starts draining within ~3 s of its return (timing goal: bench/)."""
    up = Uplink(cfg_for(tmp_path, broker), options=LinkOptions(telemetry_interval_s=3600))
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    broker.kill()
    wait_for(lambda: not up.link.connected.is_set(), what="link noticed the broker died")
    for i in range(30):
        up.record("rating", {"n": i})
    before = up.link.state.attempts
    wait_for(lambda: up.link.state.attempts >= before + 4, timeout=30, what="4 more attempts")
    assert 0 < up.link.state.longest_wait_s <= BACKOFF_MAX_S
    broker.start()
    sub = subscriber_factory(broker.port, [f"{BASE}/events/#"])
    wait_for(lambda: up.outbox.stats().waiting == 0, timeout=30, what="backlog drained")
    wait_for(lambda: len(sub.events()) == 30, what="30 events at the site")
    assert [e["seq"] for e in sub.events()] == list(range(1, 31))
    assert up.link.state.longest_wait_s <= BACKOFF_MAX_S
    up.stop()


def test_a_new_outbox_ignores_the_retained_ack_of_the_old_one_and_says_so(
    tmp_path, broker, subscriber_factory
):
    cfg = cfg_for(tmp_path, broker)
    site = subscriber_factory(broker.port, [f"{BASE}/events/#", f"{BASE}/alerts/#"])
    up = Uplink(cfg, options=LinkOptions(telemetry_interval_s=3600))
    up.start()
    for _ in range(40):
        up.record("rating", {})
    wait_for(lambda: len(site.events("rating")) == 40, what="40 events")
    old_epoch = up.outbox.epoch
    site.publish(f"{BASE}/ack", {"seq": 40, "epoch": old_epoch}, retain=True)
    wait_for(lambda: up.outbox.stats().site_acked_seq == 40, what="acked")
    up.stop()
    # The data folder is wiped (re-imaged SD card): a new outbox, same device.
    for p in cfg.data_dir.iterdir():
        p.unlink()
    up2 = Uplink(cfg, options=LinkOptions(telemetry_interval_s=3600))
    ids = [up2.record("rating", {"n": i}).id for i in range(30)]
    up2.start()
    wait_for(lambda: len(site.events("rating")) == 70, what="30 new events")
    time.sleep(0.5)  # the retained old ack has been read by now
    assert {e.id for e in up2.outbox.iter_all()} >= set(ids), "nothing deleted by the old ack"
    new = [e for e in site.events("rating") if e["epoch"] == up2.outbox.epoch]
    assert [e["seq"] for e in new] == list(range(1, 31))
    wait_for(
        lambda: [a for a in site.events("alert") if a["data"].get("previous_epoch") == old_epoch],
        what="critical storage alert",
    )
    up2.stop()


def test_an_ack_without_an_epoch_deletes_nothing(tmp_path, broker, subscriber_factory):
    site = subscriber_factory(broker.port, [f"{BASE}/events/#", f"{BASE}/reply"])
    up = Uplink(cfg_for(tmp_path, broker), options=LinkOptions(telemetry_interval_s=3600))
    up.start()
    for _ in range(5):
        up.record("rating", {})
    wait_for(lambda: len(site.events()) == 5, what="5 events")
    site.publish(f"{BASE}/ack", {"seq": 5}, retain=True)
    site.publish(f"{BASE}/ack", {"seq": 5, "epoch": "0" * 32}, retain=True)
    site.publish(f"{BASE}/cmd/ping", {"cid": "after-acks"})  # handled after both acks
    wait_for(
        lambda: any(r.get("cid") == "after-acks" for r in site.payloads("/reply")),
        what="the ping's reply",
    )
    stored = [(e.seq, e.type) for e in up.outbox.iter_all()]
    # the five ratings are all kept; the ack of another epoch only raised the storage alert
    assert stored == [(q, "rating") for q in range(1, 6)] + [(6, "alert")]
    up.stop()


def test_exactly_one_reply_for_every_command_with_a_readable_cid(
    tmp_path, broker, subscriber_factory
):
    answered: list[str] = []

    def app(name: str, cmd: Command, reply: Any) -> None:
        answered.append(name)
        if name == "pause":
            raise RuntimeError("the app's handler has a bug")
        reply(True, {"done": name}, None)
        reply(True, {"again": True}, None)  # a second answer is dropped

    up = Uplink(
        cfg_for(tmp_path, broker),
        on_command=app,
        app_commands=("prompt", "pause", "resume"),
        options=LinkOptions(telemetry_interval_s=3600),
    )
    up.start()
    wait_for(up.link.connected.is_set, what="link connected")
    ctl = subscriber_factory(broker.port, [f"{BASE}/reply"])
    deep = b'{"cid": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    cases: list[tuple[str, Any]] = [
        ("resend", {"cid": "big-from", "from": 2**63, "to": 2**63 + 5}),
        ("resend", {"cid": "neg", "from": -1, "to": 3}),
        ("resend", {"cid": "str", "from": "1", "to": 3}),
        ("resend", {"cid": "epoch", "from": 1, "to": 3, "epoch": "1" * 32}),
        ("resend", {"cid": "huge", "from": 1, "to": 2**62}),
        ("ping", deep),
        ("self_destruct", {"cid": "unknown"}),
        ("print_test", {"cid": "not-here"}),
        ("prompt", {"cid": "p-bad", "ticket": {"a": 1}}),
        ("prompt", {"cid": "p-ok", "ticket": "A012"}),
        ("pause", {"cid": "app-bug"}),
        ("ping", {"cid": "ok-ping", "extra": [1, 2]}),
        # not JSON, not UTF-8, bytes after the object, too large: the cid is still read
        ("prompt", b'{"cid":"cut-short","ticket":'),
        ("prompt", b'{"cid":"gbk-ticket","ticket":"\xb2\xe2"}'),
        ("ping", b'{"cid":"trailing"}\x00'),
        ("prompt", b'{"ticket":"A1","cid":"not-first" "x"}'),
        ("ping", b'{"cid":"too-big","x":"' + b"a" * MAX_PAYLOAD_BYTES + b'"}'),
        ("ping", b"[1, 2, 3]"),  # no cid can be read: no reply
        ("ping", b'"just a string"'),
        ("ping", b"\xff\xfe"),
        ("ping", b'{"cid":7}'),  # a reply carries the cid as sent: a string
        ("ping", b'{"cid":"' + b"c" * 129 + b'"}'),  # readable: refused for its length
        ("ping", b'{"cid":"' + b"c" * 513 + b'"}'),  # over MAX_READ_CID: not read
    ]
    for name, body in cases:
        ctl.publish(f"{BASE}/cmd/{name}", body)
    expect = {
        "big-from": False,
        "neg": False,
        "str": False,
        "epoch": False,
        "huge": False,
        "deep": False,
        "unknown": False,
        "not-here": False,
        "p-bad": False,
        "p-ok": True,
        "app-bug": False,
        "ok-ping": True,
        "cut-short": False,
        "gbk-ticket": False,
        "trailing": False,
        "not-first": False,
        "too-big": False,
        "c" * 129: False,
    }
    wait_for(lambda: len(ctl.payloads("/reply")) >= len(expect), what="replies")
    time.sleep(0.5)
    replies = ctl.payloads("/reply")
    cids = [r["cid"] for r in replies]
    assert sorted(cids) == sorted(expect), "exactly one reply per readable cid"
    for r in replies:
        assert r["ok"] is expect[r["cid"]], r
        assert ("error" in r) is (not r["ok"]) and ("result" in r) is r["ok"]
    by = {r["cid"]: r for r in replies}
    assert "nested deeper" in by["deep"]["error"]
    assert "unknown command" in by["unknown"]["error"]
    assert by["p-ok"]["result"] == {"done": "prompt"}
    assert "internal error" in by["app-bug"]["error"]
    assert "JSON" in by["cut-short"]["error"] and "UTF-8" in by["gbk-ticket"]["error"]
    assert "is over" in by["too-big"]["error"]
    assert "128 characters" in by["c" * 129]["error"]
    assert answered == ["prompt", "pause"]
    assert up.link.is_alive()
    up.stop()


def test_outbox_file_is_where_the_config_says(tmp_path, broker):
    cfg = cfg_for(tmp_path, broker)
    up = Uplink(cfg)
    assert up.outbox.path == outbox_path(cfg.data_dir)
    up.stop()


def test_two_devices_with_one_id_do_not_take_turns_in_a_tight_loop(tmp_path, broker, caplog):
    """A cloned SD card: two devices with the same id each take the other's session over as
    they connect. Each connection lost right after it was made is retried after the back-off,
    not at once (before: ~1,000 connections a second between the two, each a session number
    written to the outbox, two log lines each), and the log names the likely cause."""
    a = Uplink(cfg_for(tmp_path / "a", broker), options=LinkOptions(telemetry_interval_s=3600))
    b = Uplink(cfg_for(tmp_path / "b", broker), options=LinkOptions(telemetry_interval_s=3600))
    a.start()
    wait_for(a.link.connected.is_set, what="the first device connected")
    with caplog.at_level("WARNING", logger="careterm.link"):
        b.start()
        time.sleep(4.0)
        attempts = a.link.state.attempts + b.link.state.attempts
    a.stop()
    b.stop()
    # With the back-off (0.25 s doubling, at most 2 s, jitter) two devices make at most a few
    # dozen attempts in 4 s; in a tight loop they made thousands.
    assert attempts <= 40, attempts
    assert any("another device with id pad-w03" in r.getMessage() for r in caplog.records)
    assert max(a.link.state.longest_wait_s, b.link.state.longest_wait_s) <= BACKOFF_MAX_S
