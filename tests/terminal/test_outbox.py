"""The durable outbox: contiguous seq across restarts and crashes, durable before return, bounded by disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from terminal.envelope import uuid7
from terminal.outbox import Outbox, StorageError

from .clocks import FakeClock


def make(tmp_path: Path, **kw) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite", device="pad-w03", site="main", **kw)


def test_seq_starts_at_1_and_grows_by_one_per_event(tmp_path: Path) -> None:
    ob = make(tmp_path)
    seqs = [ob.store("rating", {"score": i}).seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]


def test_envelope_matches_spec(tmp_path: Path) -> None:
    ob = make(tmp_path)
    ev = ob.store("alert", {"kind": "printer"}, alert_kind="printer")
    env = json.loads(ev.payload)
    assert set(env) == {
        "v",
        "id",
        "seq",
        "epoch",
        "device",
        "site",
        "type",
        "ts",
        "clock_synced",
        "data",
    }
    assert env["epoch"] == ob.epoch and len(ob.epoch) == 32
    assert env["v"] == 1 and env["device"] == "pad-w03" and env["site"] == "main"
    assert uuid.UUID(env["id"]).version == 7
    assert ev.topic == "careterm/main/pad-w03/alerts/printer"
    assert isinstance(env["clock_synced"], bool)
    assert env["ts"][10] == "T" and env["ts"][-6] in "+-"


def test_seq_continues_after_reopen_even_when_acked_rows_are_gone(tmp_path: Path) -> None:
    ob = make(tmp_path)
    for _ in range(3):
        ob.store("rating", {})
    ob.mark_sent([1, 2, 3])
    assert ob.site_ack(3, ob.epoch).dropped == 3
    ob.close()
    ob = make(tmp_path)
    assert ob.store("rating", {}).seq == 4


def test_seq_is_unique_under_concurrent_writers(tmp_path: Path) -> None:
    ob = make(tmp_path)
    got: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            s = ob.store("rating", {}).seq
            with lock:
                got.append(s)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 201))


def test_an_event_reported_stored_survives_sigkill(tmp_path: Path) -> None:
    """A child stores events and prints each seq after store() returns; we SIGKILL it mid-stream."""
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from terminal.outbox import Outbox
ob = Outbox({str(tmp_path / "outbox.sqlite")!r}, device="pad-w03", site="main")
i = 0
while True:
    i += 1
    ev = ob.store("rating", {{"n": i}})
    print(ev.seq, ev.id, flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    reported = []
    assert proc.stdout is not None
    for line in proc.stdout:
        reported.append(line.split())
        if len(reported) >= 200:
            break
    proc.kill()
    proc.wait()
    ob = make(tmp_path)
    assert ob.recovered is None, "a killed writer never looks like a damaged outbox"
    stored = {(str(e.seq), e.id) for e in ob.iter_all()}
    assert {tuple(r) for r in reported} <= stored
    seqs = sorted(e.seq for e in ob.iter_all())
    assert seqs == list(range(1, len(seqs) + 1))
    assert ob.store("rating", {}).seq == len(seqs) + 1


def test_waiting_sent_and_site_ack_states(tmp_path: Path) -> None:
    ob = make(tmp_path)
    for _ in range(5):
        ob.store("rating", {})
    assert [e.seq for e in ob.waiting()] == [1, 2, 3, 4, 5]
    ob.mark_sent([1, 2])
    assert [e.seq for e in ob.waiting()] == [3, 4, 5]
    assert [e.seq for e in ob.waiting(after_seq=3)] == [4, 5]
    st = ob.stats()
    assert (st.waiting, st.sent_unacked, st.last_seq) == (3, 2, 5)
    ob.site_ack(2, ob.epoch)
    st = ob.stats()
    assert (st.waiting, st.sent_unacked, st.site_acked_seq) == (3, 0, 2)
    assert ob.site_ack(5, ob.epoch).dropped == 3
    assert ob.stats().last_seq == 5


def test_resend_marks_stored_events_waiting_again(tmp_path: Path) -> None:
    ob = make(tmp_path)
    for _ in range(6):
        ob.store("rating", {})
    ob.mark_sent([1, 2, 3, 4, 5, 6])
    ob.site_ack(2, ob.epoch)
    assert ob.mark_waiting(1, 4) == [3, 4]
    assert [e.seq for e in ob.waiting()] == [3, 4]


def test_expire_forgets_only_sent_events_past_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    ob = make(tmp_path, clock=clock)
    ob.store("rating", {})
    ob.store("rating", {})
    ob.mark_sent([1])
    clock.run(8 * 86400)
    assert ob.expire(7) == 1
    assert [e.seq for e in ob.iter_all()] == [2]  # never-sent events are never dropped


def test_full_disk_raises_storage_error_and_keeps_seq_contiguous(tmp_path: Path) -> None:
    ob = make(tmp_path, max_pages=40)
    stored = 0
    with pytest.raises(StorageError) as e:
        for _ in range(10_000):
            ob.store("rating", {"pad": "x" * 500})
            stored += 1
    assert e.value.kind == "full" and "disk full" in str(e.value)
    assert "no transaction" not in str(e.value)
    last = ob.stats().last_seq
    # The reserve was given back on the way (one more critical storage alert took a seq).
    alerts = [json.loads(ev.payload)["data"] for ev in ob.iter_all() if ev.type == "alert"]
    assert [a["kind"] for a in alerts] == ["storage"] and "reserve" in alerts[0]["message"]
    assert last == stored + 1
    assert sorted(ev.seq for ev in ob.iter_all()) == list(range(1, last + 1))
    ob.mark_sent(list(range(1, last + 1)))
    ob.site_ack(last, ob.epoch)
    # Space freed by the ack is reused; the next seq follows the last stored one.
    assert ob.store("rating", {}).seq == last + 1


def test_session_counter_is_durable(tmp_path: Path) -> None:
    ob = make(tmp_path)
    assert [ob.next_session() for _ in range(3)] == [1, 2, 3]
    ob.close()
    assert make(tmp_path).next_session() == 4


def test_uuid7_is_time_ordered_and_versioned() -> None:
    a, b = uuid7(1_700_000_000_000), uuid7(1_700_000_000_001)
    assert a < b
    u = uuid.UUID(a)
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert len({uuid7() for _ in range(10_000)}) == 10_000


def test_the_data_folder_holds_the_outbox_its_marker_and_the_reserve(tmp_path: Path) -> None:
    ob = make(tmp_path)
    ob.store("rating", {})
    names = set(os.listdir(tmp_path))
    assert {"outbox.sqlite", "outbox.identity", "outbox.reserve"} <= names
    assert json.loads((tmp_path / "outbox.identity").read_text())["epoch"] == ob.epoch
    assert (tmp_path / "outbox.reserve").stat().st_size == 256 * 1024


def test_an_acked_event_leaves_the_disk_file_and_wal_after_a_scrub(tmp_path: Path) -> None:
    """A feedback's callback phone is kept until the site has it, then leaves the disk: the
    deleted row is zeroed in the file (secure_delete, which Debian's SQLite also has on by
    default) and the WAL's older copies of its page emptied by the scrub."""
    ob = make(tmp_path)
    phone = "13812345678"
    ob.store("feedback", {"callback_phone": phone, "text": "请回电"})
    ob.store("rating", {"score": 4})
    ob.mark_sent([1, 2])
    files = [tmp_path / "outbox.sqlite", tmp_path / "outbox.sqlite-wal"]

    def on_disk() -> bool:
        return any(p.exists() and phone.encode() in p.read_bytes() for p in files)

    assert on_disk()
    assert not ob.scrub_due
    assert ob.site_ack(1, ob.epoch).dropped == 1
    assert ob.scrub_due and ob.scrub() and not ob.scrub_due
    assert not on_disk()
    assert [e.seq for e in ob.iter_all("all")] == [2]  # the rest is kept


def test_a_scrub_never_waits_for_a_reader_and_finishes_after_it(tmp_path: Path) -> None:
    """A technician's `outbox list` holding a read transaction must not hold the link thread
    (which runs the scrub) for SQLite's busy timeout: the scrub says not done, at once."""
    import sqlite3
    import time

    ob = make(tmp_path)
    ob.store("feedback", {"callback_phone": "13812345678"})
    ob.mark_sent([1])
    ob.site_ack(1, ob.epoch)
    reader = sqlite3.connect(f"file:{tmp_path / 'outbox.sqlite'}?mode=ro", uri=True)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()
    t = time.monotonic()
    assert ob.scrub() is False and ob.scrub_due
    assert time.monotonic() - t < 1.0
    reader.rollback()
    reader.close()
    assert ob.scrub() is True and not ob.scrub_due
