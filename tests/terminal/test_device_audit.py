"""Audit of 2026-12-03 (device side of "nothing lost, nothing forged, nothing reused"): a WAL
removed after a crash, a crash while a new epoch is made, an epoch change and its alert, a
publish the broker refuses, and events published before the retained ack is read."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from terminal.config import DeviceConfig, parse_config
from terminal.mqtt_link import LinkOptions
from terminal.outbox import Faults, Outbox, StorageError
from terminal.uplink import Uplink

from ..conftest import ROOT, Broker, wait_for

DEVICE = "pad-w03"
BASE = f"careterm/main/{DEVICE}"


def make(folder: Path, **kw) -> Outbox:
    return Outbox(folder / "outbox.sqlite", device=DEVICE, site="main", **kw)


def storage_alerts(ob: Outbox) -> list[dict]:
    out = []
    for e in ob.iter_all():
        data = json.loads(e.payload)["data"]
        if e.type == "alert" and data.get("kind") == "storage":
            out.append(data)
    return out


def run_child(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` with `ob` (the outbox in `folder`) in a process of its own; it ends by
    SIGKILL (its last line) or as the code says."""
    prelude = textwrap.dedent(
        f"""
        import json, os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from terminal.outbox import Outbox
        def kill():
            os.kill(os.getpid(), signal.SIGKILL)
        def ob():
            return Outbox({str(folder / "outbox.sqlite")!r}, device={DEVICE!r}, site="main")
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- a WAL lost after a crash ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["removed", "cut short"])
def test_a_wal_lost_after_sigkill_starts_a_new_epoch_so_no_seq_is_given_twice(
    tmp_path: Path, how: str
) -> None:
    """SIGKILL leaves commits in the WAL; a WAL then removed (or cut short) leaves a valid
    outbox that ends earlier. It used to go on in the same epoch and give the lost events' seq
    numbers, already published, to new events."""
    r = run_child(
        """
        o = ob()
        first = [o.store("rating", {"n": i}).id for i in range(5)]
        o._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # these five are in the database file
        later = {o.store("rating", {"n": i}).seq: o.epoch for i in range(5, 10)}
        print(json.dumps({"epoch": o.epoch, "first": first}), flush=True)
        kill()
        """,
        tmp_path,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    before = json.loads(r.stdout)
    wal = tmp_path / "outbox.sqlite-wal"
    if how == "removed":
        wal.unlink()
    else:
        with open(wal, "r+b") as f:
            f.truncate(wal.stat().st_size // 2)
    # A full disk while the new epoch is made: the start fails and the next one still knows.
    faults = Faults()
    faults.fail("site_ack", "full")
    with pytest.raises(StorageError):
        make(tmp_path, faults=faults)
    ob = make(tmp_path)
    assert ob.epoch != before["epoch"], "the epoch whose seq numbers were lost goes on"
    ratings = [e for e in ob.iter_all() if e.type == "rating"]
    assert [e.id for e in ratings][:5] == before["first"]  # what the file kept is carried over
    assert [e.seq for e in ratings] == list(range(1, len(ratings) + 1))
    [alert] = storage_alerts(ob)
    assert alert["severity"] == "critical" and alert["previous_epoch"] == before["epoch"]
    assert "WAL" in alert["message"] and str(wal) in alert["message"]
    assert not ob.wal_lost_path.exists()
    ob.close()
    again = make(tmp_path)  # a clean start after that is no new loss
    assert again.epoch == ob.epoch and len(storage_alerts(again)) == 1


def test_a_clean_stop_or_a_sigkill_with_its_wal_is_not_taken_for_a_lost_wal(
    tmp_path: Path,
) -> None:
    r = run_child(
        """
        o = ob()
        for i in range(300):
            o.store("rating", {"n": i})
        print(o.epoch, flush=True)
        kill()
        """,
        tmp_path,
    )
    epoch = r.stdout.strip()
    ob = make(tmp_path)
    assert ob.epoch == epoch and ob.meta("last_seq") == 300 and storage_alerts(ob) == []
    ob.close()
    ob = make(tmp_path)
    assert ob.epoch == epoch and storage_alerts(ob) == []


# -- a crash while a new epoch is made -----------------------------------------------------------


def test_sigkill_while_a_recovered_outbox_is_made_does_not_lose_its_alert(tmp_path: Path) -> None:
    """The outbox file is lost; the device starts a new epoch and is killed after the tables
    were made but before the alert saying the old epoch was lost was committed. The tables used
    to be committed alone: the next start took the file for a version 1 outbox and the alert
    was never raised."""
    old = make(tmp_path)
    old.store("rating", {})
    old_epoch = old.epoch
    old.close()
    (tmp_path / "outbox.sqlite").unlink()
    r = run_child(
        """
        real = Outbox._insert
        def insert(self, db, etype, *a):
            if etype == "alert":
                kill()
            return real(self, db, etype, *a)
        Outbox._insert = insert
        ob()
        """,
        tmp_path,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    ob = make(tmp_path)
    alerts = storage_alerts(ob)
    assert [a["previous_epoch"] for a in alerts] == [old_epoch]
    assert alerts[0]["severity"] == "critical"


# -- an epoch change and its alert commit together -------------------------------------------


def test_an_epoch_started_by_an_ack_beyond_the_last_seq_always_has_its_alert(
    tmp_path: Path,
) -> None:
    faults = Faults()
    ob = make(tmp_path, faults=faults)
    for _ in range(3):
        ob.store("rating", {})
    old = ob.epoch
    faults.fail("store", "full")  # the alert used to be a store of its own, after the commit
    faults.fail("site_ack", "full", times=1)
    with pytest.raises(StorageError):
        ob.site_ack(10, old)
    assert ob.epoch == old and storage_alerts(ob) == []  # nothing of it happened
    try:
        ob.site_ack(10, old)
    except StorageError:
        pass
    assert ob.epoch != old, "the retry starts the new epoch"
    [alert] = storage_alerts(ob)
    assert alert["previous_epoch"] == old and alert["carried"] == 3


def test_the_alert_about_an_earlier_outbox_is_never_noted_as_said_without_being_said(
    tmp_path: Path,
) -> None:
    faults = Faults()
    ob = make(tmp_path, faults=faults)
    ob.store("rating", {})
    foreign = "a" * 32
    faults.fail("site_ack", "readonly", times=1)
    ob.site_ack(7, foreign)  # nothing can be written: nothing noted, nothing said
    faults.fail("store", "readonly", times=1)  # the alert used to be a store of its own
    ob.site_ack(7, foreign)  # the retained ack again, at the next connect
    ob.site_ack(7, foreign)
    alerts = storage_alerts(ob)
    assert [(a["previous_epoch"], a["previous_acked_seq"]) for a in alerts] == [(foreign, 7)]


# -- the link ----------------------------------------------------------------------------------


def cfg_for(tmp_path: Path, broker: Broker) -> DeviceConfig:
    return parse_config(
        {
            "device": {
                "id": DEVICE,
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": broker.url, "keepalive_s": 5},
        }
    )


OPTS = LinkOptions(telemetry_interval_s=3600)


@pytest.mark.broker
def test_an_event_the_broker_refuses_stays_waiting(tmp_path, broker_factory) -> None:
    """A PUBACK with a failure reason (MQTT 5; here Mosquitto's ACL: not authorised) is no
    delivery: the event used to be marked sent, and so forgotten after retain_days."""
    acl = tmp_path / "acl"
    acl.write_text(
        f"topic readwrite {BASE}/status\ntopic read {BASE}/#\ntopic write {BASE}/reply\n"
        f"topic write {BASE}/events/staff\n"
    )
    broker = broker_factory(extra_conf=f"acl_file {acl}\n").start()
    up = Uplink(cfg_for(tmp_path, broker), options=OPTS)
    up.start()
    try:
        refused = up.record("rating", {"n": 1})
        allowed = up.record("staff", {"window": "W03", "action": "pause", "staff": None})
        # Mosquitto answers in order: once the second is PUBACKed, so was the first.
        wait_for(lambda: up.outbox.stats().sent_unacked == 1, timeout=30, what="one sent")
        state = {e.seq: e.sent_at is not None for e in up.outbox.iter_all()}
        assert state == {refused.seq: False, allowed.seq: True}
    finally:
        up.stop()


@pytest.mark.broker
def test_events_stored_after_a_restore_are_not_published_before_the_retained_ack(
    tmp_path, broker, subscriber_factory
) -> None:
    """An outbox restored from an older copy hands out seq numbers the site already has; the
    retained ack tells the device so at connect. Events stored since used to be published first,
    giving one (epoch, seq) to two events on the wire."""
    cfg = cfg_for(tmp_path, broker)
    site = subscriber_factory(broker.port, [f"{BASE}/events/#", f"{BASE}/alerts/#"])
    up = Uplink(cfg, options=OPTS)
    for i in range(3):
        up.record("rating", {"n": i})
    up.outbox.close()
    copy = tmp_path / "copy.sqlite"
    shutil.copy(cfg.data_dir / "outbox.sqlite", copy)  # the image taken then
    up = Uplink(cfg, options=OPTS)
    up.start()
    for i in range(3, 8):
        up.record("rating", {"n": i})
    epoch = up.outbox.epoch
    wait_for(lambda: len(site.events()) == 8, what="8 events at the site")
    site.publish(f"{BASE}/ack", {"seq": 8, "epoch": epoch}, retain=True)
    wait_for(lambda: up.outbox.stats().site_acked_seq == 8, what="acked")
    up.stop()
    for p in cfg.data_dir.glob("outbox.sqlite*"):
        p.unlink()
    shutil.copy(copy, cfg.data_dir / "outbox.sqlite")  # the image restored
    up = Uplink(cfg, options=OPTS)
    fresh = [up.record("rating", {"n": f"after {i}"}).id for i in range(3)]
    up.start()
    try:
        wait_for(lambda: up.outbox.epoch != epoch, what="a new epoch")
        wait_for(lambda: fresh[-1] in {e["id"] for e in site.events()}, what="fresh events")
        wait_for(lambda: up.outbox.stats().waiting == 0, what="all sent")
        ids_of: dict[tuple[str, int], set[str]] = {}
        for e in site.events():
            ids_of.setdefault((e["epoch"], e["seq"]), set()).add(e["id"])
        assert {k: v for k, v in ids_of.items() if len(v) > 1} == {}
        assert all(f not in {e["id"] for e in site.events() if e["epoch"] == epoch} for f in fresh)
    finally:
        up.stop()


def test_the_wal_lost_note_is_not_left_behind_by_a_recovery(tmp_path: Path) -> None:
    """A lost WAL whose database holds no outbox yet is an ordinary recovery (new file)."""
    r = run_child(
        """
        o = ob()
        o.store("rating", {})
        print(o.epoch, flush=True)
        kill()
        """,
        tmp_path,
    )
    epoch = r.stdout.strip()
    os.unlink(tmp_path / "outbox.sqlite-wal")
    ob = make(tmp_path)
    assert ob.epoch != epoch and ob.recovered is not None
    assert not ob.wal_lost_path.exists()
    [alert] = storage_alerts(ob)
    assert alert["previous_epoch"] == epoch


# -- an outbox file older than its marker ------------------------------------------------------


def test_an_outbox_file_restored_from_before_its_epoch_ended_starts_a_new_epoch(
    tmp_path: Path,
) -> None:
    """Only outbox.sqlite is restored from an old copy, made before the device left that epoch
    (a retained ack beyond its last seq). The retained ack is then for the newer epoch, so it
    cannot tell the device; the marker can. The file used to go on in its old epoch and give
    seq numbers the site already held for other events."""
    ob = make(tmp_path)
    for _ in range(3):
        ob.store("rating", {})
    ob.close()
    copy = tmp_path / "copy.sqlite"
    shutil.copy(tmp_path / "outbox.sqlite", copy)
    ob = make(tmp_path)
    first = ob.epoch
    used = {ob.store("rating", {}).seq: None for _ in range(3)}  # seq 4..6 of the first epoch
    ob.site_ack(99, first)  # e.g. the site had more: a new epoch
    second = ob.epoch
    assert second != first
    ob.close()
    for p in tmp_path.glob("outbox.sqlite*"):
        p.unlink()
    shutil.copy(copy, tmp_path / "outbox.sqlite")
    ob = make(tmp_path)
    ev = ob.store("rating", {})
    assert not (ob.epoch == first and ev.seq in used), "a seq of the first epoch given twice"
    assert ob.epoch not in (first, second)
    alerts = storage_alerts(ob)
    assert alerts[-1]["previous_epoch"] == first and "marker" in alerts[-1]["message"]
    assert [e.type for e in ob.iter_all()].count("rating") == 4  # the copy's 3, and the new one
    ob.close()
    assert make(tmp_path).epoch == ob.epoch  # once


def test_a_marker_one_step_behind_after_a_crash_is_only_rewritten(tmp_path: Path) -> None:
    """A crash between a new epoch's commit and the marker's write leaves the marker naming the
    epoch that just ended: the file is the newer one, used as it is."""
    ob = make(tmp_path)
    ob.store("rating", {})
    first = ob.epoch
    marker = ob.identity_path.read_bytes()
    ob.site_ack(5, first)  # beyond: new epoch
    second = ob.epoch
    ob.close()
    ob.identity_path.write_bytes(marker)  # as if killed before the marker was written
    ob = make(tmp_path)
    assert ob.epoch == second
    assert json.loads(ob.identity_path.read_bytes())["epoch"] == second
