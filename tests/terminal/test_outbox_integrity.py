"""Outbox at the edges (issue 11): epochs, a lost or damaged file, full disks, clock jumps."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.outbox import Faults, Outbox, StorageError

from ..conftest import run_careterm
from .clocks import FakeClock

DEVICE = "pad-w03"


def make(folder: Path, **kw) -> Outbox:
    return Outbox(folder / "outbox.sqlite", device=DEVICE, site="main", **kw)


def data_of(ob: Outbox) -> list[dict]:
    return [json.loads(e.payload)["data"] for e in ob.iter_all()]


def storage_alerts(ob: Outbox) -> list[dict]:
    return [d for d in data_of(ob) if d.get("kind") == "storage"]


# -- epochs and acks ---------------------------------------------------------------------------


def test_every_envelope_carries_the_epoch_and_seq_starts_at_1(tmp_path: Path) -> None:
    ob = make(tmp_path)
    evs = [json.loads(ob.store("rating", {}).payload) for _ in range(3)]
    assert [e["seq"] for e in evs] == [1, 2, 3]
    assert {e["epoch"] for e in evs} == {ob.epoch}
    assert ob.recovered is None  # a first start is not a recovery
    assert storage_alerts(ob) == []


@pytest.mark.parametrize("epoch", [None, "f" * 32])
def test_an_ack_without_or_for_another_epoch_deletes_nothing(tmp_path: Path, epoch) -> None:
    ob = make(tmp_path)
    for _ in range(5):
        ob.store("rating", {})
    ob.mark_sent([1, 2, 3, 4, 5])
    result = ob.site_ack(5, epoch)
    assert not result.applied and result.dropped == 0
    assert [e.seq for e in ob.iter_all() if e.type == "rating"] == [1, 2, 3, 4, 5]
    assert ob.stats().site_acked_seq == 0


def test_a_lost_outbox_with_a_retained_ack_of_the_old_epoch_loses_no_new_event(
    tmp_path: Path,
) -> None:
    """The issue's case: data_dir deleted; the site's retained ack for the old seqs must not
    delete the new, never-sent events (30 of 40 were lost that way)."""
    old = make(tmp_path)
    for _ in range(40):
        old.store("rating", {})
    old_epoch = old.epoch
    old.close()
    for p in tmp_path.iterdir():
        p.unlink()  # the whole data folder is gone (SD card swapped, re-imaged)
    new = make(tmp_path)
    ids = [new.store("rating", {"n": i}).id for i in range(40)]
    result = new.site_ack(30, old_epoch)  # the retained ack of the old outbox arrives
    assert not result.applied
    assert [e.id for e in new.iter_all() if e.type == "rating"] == ids
    # ... and the device says what it learnt: the site knew an earlier outbox of it.
    [alert] = storage_alerts(new)
    assert alert["severity"] == "critical" and alert["previous_epoch"] == old_epoch
    assert alert["previous_acked_seq"] == 30
    new.site_ack(30, old_epoch)  # again at the next connect: no second alert
    assert len(storage_alerts(new)) == 1


def test_a_missing_outbox_file_is_told_from_a_first_boot_by_its_marker(tmp_path: Path) -> None:
    ob = make(tmp_path)
    ob.store("rating", {})
    first = ob.epoch
    ob.close()
    (tmp_path / "outbox.sqlite").unlink()
    for side in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / f"outbox.sqlite{side}").unlink()
    again = make(tmp_path)
    assert again.epoch != first
    assert again.recovered is not None and "missing" in again.recovered.problem
    [alert] = storage_alerts(again)
    assert alert["severity"] == "critical" and alert["previous_epoch"] == first
    assert json.loads(next(again.iter_all()).payload)["seq"] == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"this is not a database at all" * 100, "not a database"),
    ],
)
def test_an_empty_or_unreadable_outbox_is_moved_aside_and_kept(
    tmp_path: Path, content: bytes, words: str, caplog
) -> None:
    ob = make(tmp_path)
    ob.store("rating", {})
    ob.close()
    for side in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / f"outbox.sqlite{side}").unlink()
    (tmp_path / "outbox.sqlite").write_bytes(content)
    again = make(tmp_path)
    assert again.recovered is not None and words in again.recovered.problem
    [kept] = again.recovered.kept
    assert kept.exists() and kept.read_bytes() == content and kept.parent == tmp_path
    assert str(kept) in caplog.text  # named in the log
    [alert] = storage_alerts(again)
    assert alert["severity"] == "critical" and str(kept) in alert["message"]
    assert alert["kept"] == [str(kept)]


def test_a_first_start_killed_before_its_tables_is_not_a_recovery(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    db.execute("PRAGMA journal_mode=WAL")  # what a first start does before its tables
    db.close()
    ob = make(tmp_path)
    assert ob.recovered is None and storage_alerts(ob) == []
    assert ob.store("rating", {}).seq == 1


def test_an_outbox_emptied_of_its_tables_after_use_is_a_recovery(tmp_path: Path) -> None:
    make(tmp_path).close()
    (tmp_path / "outbox.sqlite").unlink()
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    ob = make(tmp_path)  # the marker says an outbox was here
    assert ob.recovered is not None and "no outbox" in ob.recovered.problem


def test_a_damaged_outbox_page_is_detected_and_the_file_kept(tmp_path: Path) -> None:
    ob = make(tmp_path)
    for _ in range(300):
        ob.store("rating", {"pad": "x" * 200})
    ob.close()
    path = tmp_path / "outbox.sqlite"
    raw = bytearray(path.read_bytes())
    for i in range(8192, min(len(raw), 40960)):
        raw[i] = 0xA5  # scribble over b-tree pages, keep the header
    path.write_bytes(bytes(raw))
    again = make(tmp_path)
    assert again.recovered is not None
    assert again.recovered.kept and again.recovered.kept[0].exists()
    assert again.store("rating", {}).seq == 2  # seq 1 is the critical storage alert


def test_an_outbox_of_another_device_is_not_used(tmp_path: Path) -> None:
    other = Outbox(tmp_path / "outbox.sqlite", device="pad-w04", site="main")
    other.store("rating", {})
    other.close()
    ob = make(tmp_path)
    assert ob.recovered is not None and "pad-w04" in ob.recovered.problem


def test_an_ack_beyond_the_last_seq_starts_a_new_epoch_and_carries_events_over(
    tmp_path: Path,
) -> None:
    """An outbox restored from an older copy: the site has seqs this file never made. The file's
    events move to a new epoch with their ids, so no seq of the old epoch is used twice."""
    ob = make(tmp_path)
    ids = [ob.store("rating", {}).id for _ in range(3)]
    old = ob.epoch
    result = ob.site_ack(10, old)
    assert not result.applied
    assert ob.epoch != old
    evs = [json.loads(e.payload) for e in ob.iter_all()]
    assert [e["id"] for e in evs[:3]] == ids
    assert [e["seq"] for e in evs] == [1, 2, 3, 4]
    assert {e["epoch"] for e in evs} == {ob.epoch}
    assert evs[3]["data"]["kind"] == "storage" and evs[3]["data"]["previous_epoch"] == old
    assert ob.store("rating", {}).seq == 5
    assert json.loads((tmp_path / "outbox.identity").read_text())["epoch"] == ob.epoch


def test_a_version_1_outbox_gets_an_epoch_and_keeps_its_events(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
            topic TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL, sent_at REAL);
        INSERT INTO meta VALUES ('schema', 1), ('last_seq', 7), ('session', 3),
            ('site_acked_seq', 6);
        """
    )
    env = {"v": 1, "id": str(uuid.uuid4()), "seq": 7, "device": DEVICE, "site": "main"}
    db.execute(
        "INSERT INTO events VALUES (7, ?, 'rating', 't', ?, 1.0, NULL)",
        (env["id"], json.dumps(env).encode()),
    )
    db.commit()
    db.close()
    ob = make(tmp_path)
    assert ob.recovered is None and len(ob.epoch) == 32
    [ev] = list(ob.iter_all())
    assert json.loads(ev.payload)["epoch"] == ob.epoch and ev.id == env["id"]
    assert ob.store("rating", {}).seq == 8
    assert ob.meta("session") == 3


# -- writes that fail --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"), [("full", "disk full"), ("readonly", "read-only"), ("io", "I/O error")]
)
def test_a_refused_store_reports_the_real_error_and_is_never_stored(
    tmp_path: Path, kind, words
) -> None:
    faults = Faults()
    ob = make(tmp_path, faults=faults)
    ob.store("rating", {})
    faults.fail("store", kind)
    with pytest.raises(StorageError) as e:
        ob.store("rating", {"refused": True})
    assert e.value.kind == kind and words in str(e.value)
    assert "no transaction" not in str(e.value)
    faults.clear()
    assert {"refused": True} not in data_of(ob)
    assert ob.store("rating", {}).seq == 2  # the refused event took no seq
    if kind == "full":  # the reserve went back to the file system: a critical alert says so
        assert "reserve" in storage_alerts(ob)[0]["message"]


def test_one_failed_write_is_retried_after_the_wal_is_truncated(tmp_path: Path) -> None:
    faults = Faults()
    ob = make(tmp_path, faults=faults)
    faults.fail("store", "full", times=1)
    ev = ob.store("rating", {"n": 1})
    assert ev.seq == 1 and faults.raised == 1
    # The reserve went back to the file system; one critical alert says so.
    assert not (tmp_path / "outbox.reserve").exists()
    [alert] = storage_alerts(ob)
    assert alert["severity"] == "critical" and "reserve" in alert["message"]


@pytest.mark.parametrize("op", ["mark_sent", "site_ack"])
def test_mark_sent_and_site_ack_roll_back_and_report_the_real_error(tmp_path: Path, op) -> None:
    faults = Faults()
    ob = make(tmp_path, faults=faults)
    for _ in range(3):
        ob.store("rating", {})
    faults.fail(op, "io")  # type: ignore[arg-type]
    with pytest.raises(StorageError) as e:
        if op == "mark_sent":
            ob.mark_sent([1, 2])
        else:
            ob.mark_sent([1, 2])
            ob.site_ack(2, ob.epoch)
    assert "I/O error" in str(e.value) and "no transaction" not in str(e.value)
    assert not ob._db.in_transaction  # rolled back: the connection is usable
    faults.clear()
    assert ob.store("rating", {}).seq == 4
    assert len(list(ob.iter_all())) == 4


def test_max_page_count_full_disk_then_space_freed(tmp_path: Path) -> None:
    ob = make(tmp_path, max_pages=64)
    ids = []
    with pytest.raises(StorageError) as e:
        for _ in range(100_000):
            ids.append(ob.store("rating", {"pad": "x" * 300}).id)
    assert e.value.kind == "full"
    stored = {ev.id for ev in ob.iter_all()}
    assert set(ids) <= stored
    ob.mark_sent([ev.seq for ev in ob.iter_all()])
    ob.site_ack(ob.stats().last_seq, ob.epoch)
    for _ in range(20):
        ob.store("rating", {"pad": "x" * 300})


@contextlib.contextmanager
def small_filesystem(where: Path, size: str = "3m") -> Iterator[Path]:
    """A real, small file system: tmpfs (root only)."""
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (max_page_count tests cover the rest)")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Take every free block of the file system with a ballast file."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\xaa" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return ballast


def test_a_real_full_disk_recovers_with_about_1_mib_free(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small") as disk:
        data = disk / "data"
        data.mkdir()
        ob = make(data)
        reported = [ob.store("rating", {"n": i}).id for i in range(20)]
        ballast = fill(disk)
        # The reserve lets a few more events in (a patient's rating still fits) ...
        refused = None
        for i in range(10_000):
            try:
                reported.append(ob.store("rating", {"n": 100 + i, "pad": "x" * 200}).id)
            except StorageError as e:
                refused = e
                break
        assert refused is not None, "the disk never filled"
        assert refused.kind == "full" and "disk full" in str(refused)
        assert "no transaction" not in str(refused)
        assert any("reserve" in a["message"] for a in storage_alerts(ob))
        with pytest.raises(StorageError):
            ob.store("rating", {"refused": True})
        # ~1 MiB frees up: the outbox works again at once, and keeps working.
        size = ballast.stat().st_size
        os.truncate(ballast, max(0, size - 1024 * 1024))
        for i in range(300):
            reported.append(ob.store("rating", {"after": i}).id)
        ob.close()
        again = make(data)
        stored = [ev for ev in again.iter_all()]
        assert {ev.id for ev in stored} >= set(reported)
        assert [ev.seq for ev in stored] == list(range(1, len(stored) + 1))
        assert {"refused": True} not in data_of(again)
        again.close()


# -- expiry and the clock ----------------------------------------------------------------------


def test_a_clock_that_jumps_years_ahead_expires_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    ob = make(tmp_path, clock=clock)
    for _ in range(5):
        ob.store("rating", {})
    ob.mark_sent([1, 2, 3, 4, 5])
    clock.jump(5 * 365 * 86400)  # NTP, a technician, or a bad RTC: five years ahead
    assert ob.expire(7) == 0
    clock.run(6 * 86400)  # six days really pass
    assert ob.expire(7) == 0
    clock.run(1 * 86400 + 1)  # the seventh day: now the device has kept them long enough
    assert ob.expire(7) == 5


def test_events_recorded_while_the_clock_was_in_the_past_survive_the_first_sync(
    tmp_path: Path,
) -> None:
    """The issue's case: a Pi without RTC boots in 1970, records, then NTP syncs."""
    clock = FakeClock(wall_s=86400.0, is_synced=False)
    ob = make(tmp_path, clock=clock)
    for _ in range(4):
        ob.store("rating", {})
    ob.mark_sent([1, 2, 3, 4])
    clock.run(3600)
    clock.is_synced = True
    clock.jump(1_790_000_000)
    assert ob.expire(7) == 0
    ob.close()
    again = make(tmp_path, clock=clock)  # a restart after the sync
    assert again.expire(7) == 0
    assert len(list(again.iter_all())) == 4


def test_time_on_an_unsynchronised_clock_does_not_count(tmp_path: Path) -> None:
    clock = FakeClock()
    ob = make(tmp_path, clock=clock)
    ob.store("rating", {})
    ob.mark_sent([1])
    clock.is_synced = False
    clock.run(30 * 86400)
    assert ob.expire(7) == 0
    clock.is_synced = True
    clock.run(1)
    assert ob.expire(7) == 0  # only a synced second has counted since
    assert ob.stats().kept_s < 10


def test_kept_time_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    ob = make(tmp_path, clock=clock)
    ob.store("rating", {})
    ob.mark_sent([1])
    clock.run(4 * 86400)
    ob.close()
    clock.mono_s = 5.0  # a reboot restarts the monotonic clock
    again = make(tmp_path, clock=clock)
    clock.run(3 * 86400 + 1)
    assert again.expire(7) == 1


def test_outbox_stats_reads_without_touching_the_files(tmp_path: Path, config_writer) -> None:
    cfg = config_writer()
    data = tmp_path / "data"
    ob = make(data)
    ob.store("rating", {})
    ob.close()

    def files() -> list[str]:  # a reader may add SQLite's -wal/-shm; nothing else changes
        return sorted(p.name for p in data.iterdir() if not p.name.endswith(("-wal", "-shm")))

    before = files()
    r = run_careterm("outbox", "stats", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["epoch"] == ob.epoch and st["last_seq"] == 1
    (data / "outbox.sqlite").write_bytes(b"")  # damaged: stats says so, moves nothing
    r = run_careterm("outbox", "stats", "--config", str(cfg))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert files() == before and (data / "outbox.sqlite").read_bytes() == b""
