"""Retained documents: a bad one never replaces the last good one and raises one `document` alert;
a roster for another date is kept aside and takes over on its day."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from terminal.documents import DocumentStore
from terminal.payloads import Roster, StaffDirectory

TODAY = date(2026, 11, 23)
TOKEN = "0" * 32


def roster(day: date, n: int = 1) -> bytes:
    appts = [
        {
            "id": f"A{day:%Y%m%d}-{i:04d}",
            "token": TOKEN,
            "department_id": "cardio",
            "department": "心内科",
            "slot_start": f"{day}T09:00:00+08:00",
            "slot_end": f"{day}T09:30:00+08:00",
            "queue_no": f"B{i:03d}",
        }
        for i in range(n)
    ]
    return json.dumps({"v": 1, "date": str(day), "appointments": appts}).encode()


STAFF = json.dumps([{"staff": "E1024", "name": "王芳", "title": "收费员"}]).encode()


class Alerts:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def __call__(self, kind: str, severity: str, message: str, **details: Any) -> None:
        self.got.append({"kind": kind, "severity": severity, "message": message, **details})


class Day:
    def __init__(self, d: date) -> None:
        self.d = d

    def __call__(self) -> date:
        return self.d


@pytest.mark.parametrize(
    ("name", "good", "bad", "words"),
    [
        ("staff", STAFF, b"[1,2,3]", "0"),
        ("staff", STAFF, b"[]", "at least 1"),
        ("directory", b'{"v":1,"departments":[{"id":"cardio","name":"x"}]}', b"{}", "departments"),
        ("survey", b'{"v":1,"id":"s","questions":[{"id":"q1","text":"?"}]}', b'{"v":1}', "id"),
        ("roster", roster(TODAY), b'{"v":1,"date":"2026-11-23","appointments":[]}', "at least 1"),
        ("roster", roster(TODAY), b"\xff\xfe", "not UTF-8"),
        ("roster", roster(TODAY), b"[" * 5000, "nested"),
    ],
)
def test_a_bad_document_keeps_the_last_good_one_in_memory_and_on_disk(
    tmp_path: Path, name: str, good: bytes, bad: bytes, words: str
) -> None:
    alerts = Alerts()
    store = DocumentStore(name, tmp_path, alert=alerts, today=Day(TODAY))  # type: ignore[arg-type]
    assert store.offer(good).accepted
    kept = store.current
    result = store.offer(bad)
    assert not result.accepted and result.fault and words in result.fault
    assert store.current == kept
    assert store.path.read_bytes() == good
    # One warning alert of kind `document` naming the document and the fault...
    assert len(alerts.got) == 1
    a = alerts.got[0]
    assert (a["kind"], a["severity"], a["document"]) == ("document", "warning", name)
    assert words in a["fault"]
    # ... once per distinct payload (a retained message comes again at every reconnect).
    store.offer(bad)
    assert len(alerts.got) == 1
    # After a restart the last good one is back.
    again = DocumentStore(name, tmp_path, today=Day(TODAY))  # type: ignore[arg-type]
    assert again.load() == kept


def test_a_roster_for_another_date_is_kept_aside_and_takes_over_on_its_day(tmp_path: Path) -> None:
    day = Day(TODAY)
    store = DocumentStore("roster", tmp_path, today=day)
    assert store.offer(roster(TODAY, 3)).accepted
    tomorrow = TODAY + timedelta(days=1)
    result = store.offer(roster(tomorrow, 5))
    assert not result.accepted and result.kept_aside
    cur = store.current
    assert isinstance(cur, Roster) and cur.date == TODAY and len(cur.appointments) == 3
    assert json.loads(store.path.read_bytes())["date"] == str(TODAY)
    assert store.aside() == [tomorrow]
    # A restart still has today's in place and tomorrow's aside.
    again = DocumentStore("roster", tmp_path, today=day)
    loaded = again.load()
    assert isinstance(loaded, Roster) and loaded.date == TODAY
    assert again.aside() == [tomorrow]
    # Midnight: tomorrow's takes over, in memory and on disk.
    day.d = tomorrow
    cur = again.current
    assert isinstance(cur, Roster) and cur.date == tomorrow and len(cur.appointments) == 5
    assert json.loads(again.path.read_bytes())["date"] == str(tomorrow)
    assert again.aside() == []


def test_an_old_or_far_roster_is_never_used_nor_kept_and_the_site_is_told(
    tmp_path: Path,
) -> None:
    alerts = Alerts()
    store = DocumentStore("roster", tmp_path, alert=alerts, today=Day(TODAY))
    for when in (TODAY - timedelta(days=1), TODAY + timedelta(days=30)):
        result = store.offer(roster(when))
        assert not result.accepted and not result.kept_aside
        assert store.current is None and not store.path.exists() and store.aside() == []
    assert [a["document"] for a in alerts.got] == ["roster", "roster"]
    assert f"roster for {TODAY - timedelta(days=1)} is not for today" in alerts.got[0]["fault"]
    store.offer(roster(TODAY - timedelta(days=1)))  # the same again: no second alert
    assert len(alerts.got) == 2


def test_a_roster_left_from_yesterday_is_not_today_s_after_a_restart(tmp_path: Path) -> None:
    store = DocumentStore("roster", tmp_path, today=Day(TODAY))
    store.offer(roster(TODAY))
    later = DocumentStore("roster", tmp_path, today=Day(TODAY + timedelta(days=1)))
    assert later.load() is None


def test_staff_directory_model_is_what_the_store_returns(tmp_path: Path) -> None:
    store = DocumentStore("staff", tmp_path)
    store.offer(STAFF)
    cur = store.current
    assert isinstance(cur, StaffDirectory) and cur.root[0].staff == "E1024"


def test_an_empty_retained_message_changes_nothing_and_alerts_nothing(tmp_path: Path) -> None:
    alerts = Alerts()
    store = DocumentStore("staff", tmp_path, alert=alerts)
    store.offer(STAFF)
    assert not store.offer(b"").accepted
    assert store.current is not None and alerts.got == []


def test_a_failing_alert_never_breaks_the_store(tmp_path: Path) -> None:
    def broken(*a: Any, **k: Any) -> None:
        raise OSError("disk full")

    store = DocumentStore("staff", tmp_path, alert=broken)
    assert not store.offer(b"{}").accepted


def test_a_local_file_is_used_without_a_copy_and_never_replaces_a_newer_roster(
    tmp_path: Path,
) -> None:
    def generated(hh: int) -> bytes:
        doc = json.loads(roster(TODAY))
        doc["generated"] = f"{TODAY}T{hh:02d}:00:00+08:00"
        return json.dumps(doc).encode()

    store = DocumentStore("roster", tmp_path, today=Day(TODAY))
    assert store.offer(generated(6), "roster_file", save=False, if_newer=True).accepted
    assert not store.path.exists()  # the local file is its own copy
    assert store.offer(generated(7)).accepted  # from the site: saved
    older = store.offer(generated(5), "roster_file", save=False, if_newer=True)
    assert not older.accepted and older.fault is None  # not a fault: just not newer
    assert json.loads(store.path.read_bytes())["generated"].startswith(f"{TODAY}T07")
    assert store.offer(generated(8), "roster_file", save=False, if_newer=True).accepted


def test_files_an_older_version_kept_elsewhere_are_moved_once(tmp_path: Path) -> None:
    old = tmp_path / "roster.json"
    old_aside = tmp_path / "roster-aside.json"
    old.write_bytes(roster(TODAY))
    tomorrow = TODAY + timedelta(days=1)
    old_aside.write_bytes(roster(tomorrow))
    store = DocumentStore("roster", tmp_path, today=Day(TODAY))
    store.migrate(old)
    store.migrate(old_aside)
    assert not old.exists() and not old_aside.exists()
    loaded = store.load()
    assert isinstance(loaded, Roster) and loaded.date == TODAY
    assert [r.date for r in store.aside_rosters()] == [tomorrow]
    # A file of the store's own is never overwritten by an old one; a bad one is renamed.
    old.write_bytes(roster(TODAY, 3))
    store.migrate(old)
    assert not old.exists() and len(json.loads(store.path.read_bytes())["appointments"]) == 1
    bad = tmp_path / "directory.json"
    bad.write_bytes(b"{}")
    DocumentStore("directory", tmp_path).migrate(bad)
    assert not bad.exists() and (tmp_path / "directory.json.unusable").exists()


def test_a_document_offered_again_unchanged_is_not_validated_nor_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import terminal.documents as documents

    parsed: list[int] = []
    real = documents.parse_roster
    monkeypatch.setattr(
        documents, "parse_roster", lambda p, *a, **k: (parsed.append(1), real(p, *a, **k))[1]
    )
    payload = roster(TODAY, 3)
    local = DocumentStore("roster", tmp_path, today=Day(TODAY))
    first = local.offer(payload, "roster_file", save=False)
    assert first.accepted and len(parsed) == 1
    # The same bytes from a file again: known, the same document.
    again = local.offer(payload, "roster_file", save=False)
    assert again.accepted and again.document is first.document and len(parsed) == 1
    # From the site (to be saved): validated and written once, then known.
    assert local.offer(payload).accepted and len(parsed) == 2
    assert local.path.read_bytes() == payload
    assert local.offer(payload).accepted and len(parsed) == 2
    # After a restart, the retained copy arriving again is the one loaded from disk.
    restarted = DocumentStore("roster", tmp_path, today=Day(TODAY))
    loaded = restarted.load()
    assert len(parsed) == 3
    r = restarted.offer(payload)
    assert r.accepted and r.document is loaded and len(parsed) == 3
    # The file gone: written again.
    restarted.path.unlink()
    assert restarted.offer(payload).accepted and restarted.path.read_bytes() == payload
    # Another payload is validated as ever.
    assert restarted.offer(roster(TODAY, 4)).accepted and len(parsed) == 5


def test_a_prepared_roster_is_offered_as_validated_and_its_file_kept_until_then(
    tmp_path: Path,
) -> None:
    """`prepare` (any thread) validates and indexes; `offer(prepared=...)` (the core thread)
    only keeps, with the same outcome and alert as validating there."""
    from terminal.roster_index import RosterIndex

    alerts = Alerts()
    store = DocumentStore("roster", tmp_path, alert=alerts, today=Day(TODAY))
    good = store.prepare(roster(TODAY, 3))
    bad_bytes = b'{"v":1,"date":"2026-11-23","appointments":[]}'
    bad = store.prepare(bad_bytes)
    assert good.fault is None and isinstance(good.document, Roster)
    assert bad.document is None and bad.fault and "at least 1" in bad.fault
    rows = good.document.appointments
    assert isinstance(rows, RosterIndex)
    # another roster taken meanwhile does not remove the prepared one's file
    assert store.offer(roster(TODAY, 2)).accepted and rows.path.exists()
    taken = store.offer(roster(TODAY, 3), prepared=good)
    assert taken.accepted and taken.document is good.document and store.current is good.document
    refused = store.offer(bad_bytes, prepared=bad)
    assert not refused.accepted and refused.fault == bad.fault and len(alerts.got) == 1
    assert store.current is good.document
    # a result prepared from other bytes is not used: those are validated here
    other = store.offer(roster(TODAY, 4), prepared=good)
    assert other.accepted and other.document is not good.document
    assert len(other.document.appointments) == 4  # type: ignore[union-attr]
    assert [p.name for p in (tmp_path / "documents" / "roster-index").iterdir()] == [
        other.document.appointments.path.name  # type: ignore[union-attr]
    ]
