"""Roster parsing and lookup, the check-in window, and today's check-ins on disk."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from careterm.demo_data import DEMO_PATIENTS, demo_roster
from kiosk.checkin import CheckinLog, decide, first_allowed
from kiosk.roster import Roster, RosterError, RosterStore

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=CST)


def roster_doc(day: str = "2026-11-23", **over) -> dict:
    row = {
        "id": "A20261123-0042",
        "token": "t" * 32,
        "name": "张*三",
        "department_id": "cardio",
        "department": "心内科",
        "doctor": "李明",
        "room": "门诊3楼 305诊室",
        "slot_start": f"{day}T09:00:00+08:00",
        "slot_end": f"{day}T09:30:00+08:00",
        "queue_no": "B023",
    }
    row.update(over)
    return {"v": 1, "date": day, "generated": f"{day}T06:00:00+08:00", "appointments": [row]}


def test_lookup_by_token_and_id_in_a_20000_roster_is_well_under_a_millisecond():
    doc = demo_roster(b"salt", NOW.date(), size=20000, now=NOW)
    r = Roster.parse(json.dumps(doc).encode())
    assert len(r) == 20000 + len(DEMO_PATIENTS)
    token = doc["appointments"][12345]["token"]
    t = time.perf_counter()
    for _ in range(100):
        found = r.for_token(token)
        by_id = r.get(doc["appointments"][12345]["id"].lower())
    per = (time.perf_counter() - t) / 100
    assert per < 0.0005
    assert doc["appointments"][12345]["id"] in [a.id for a in found]
    assert by_id is not None and by_id.token == token


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.update(v=2), "v"),
        (lambda d: d.update(date="23.11.2026"), "date"),
        (
            lambda d: d["appointments"][0].update(slot_start="9 o'clock"),
            "appointments[0].slot_start",
        ),
        (lambda d: d["appointments"][0].pop("queue_no"), "appointments[0].queue_no"),
        (lambda d: d.update(appointments={}), "appointments"),
    ],
)
def test_bad_rosters_are_refused_naming_the_field(mutate, where):
    doc = roster_doc()
    mutate(doc)
    with pytest.raises(RosterError, match=rf"^{where.replace('[', '.').replace(']', '.')}"):
        Roster.parse(json.dumps(doc))
    with pytest.raises(RosterError):
        Roster.parse(b"\xff not json")


def test_received_roster_is_kept_on_disk_and_another_days_roster_is_not_used(tmp_path: Path):
    store = RosterStore(tmp_path)
    store.received(json.dumps(roster_doc()).encode(), NOW.date())
    again = RosterStore(tmp_path)
    assert again.load(NOW.date()) is not None
    assert again.today(NOW.date()).get("A20261123-0042").queue_no == "B023"
    assert again.today(date(2026, 11, 24)) is None  # yesterday's roster does not check anyone in


def test_roster_file_is_used_and_todays_roster_wins(tmp_path: Path):
    f = tmp_path / "local.json"
    f.write_text(json.dumps(roster_doc("2026-11-22")))
    store = RosterStore(tmp_path / "data", str(f))
    store.load(NOW.date())
    assert store.current is not None and store.today(NOW.date()) is None
    time.sleep(0.01)
    f.write_text(json.dumps(roster_doc()))
    import os

    os.utime(f, (time.time() + 5, time.time() + 5))
    store.refresh_file(NOW.date())
    assert store.today(NOW.date()) is not None
    # an older day's roster arriving later does not replace today's
    store.received(json.dumps(roster_doc("2026-11-20")).encode(), NOW.date())
    assert store.today(NOW.date()) is not None


def appt(start: datetime):
    doc = roster_doc(
        slot_start=start.isoformat(), slot_end=(start + timedelta(minutes=30)).isoformat()
    )
    return Roster.parse(doc).appointments[0]


def test_checkin_window_timing_and_refusals():
    a = appt(NOW)
    assert decide(a, NOW - timedelta(minutes=61), 60, 30).refusal == "too_early"
    assert decide(a, NOW - timedelta(minutes=61), 60, 30).come_back_hhmm == "08:00"
    assert decide(a, NOW - timedelta(minutes=60), 60, 30).timing == "early"
    assert decide(a, NOW - timedelta(minutes=60), 60, 30).allowed
    assert decide(a, NOW + timedelta(minutes=10), 60, 30).timing == "on_time"
    late = decide(a, NOW + timedelta(minutes=59), 60, 30)
    assert late.allowed and late.timing == "late"
    assert decide(a, NOW + timedelta(minutes=61), 60, 30).refusal == "too_late"
    # a patient checked in already may reprint, even after the window closed
    again = decide(a, NOW + timedelta(hours=5), 60, 30, already=True)
    assert again.allowed and again.repeat


def test_come_back_time_is_in_the_slots_time_zone():
    a = appt(NOW)
    utc_now = (NOW - timedelta(hours=3)).astimezone(UTC)
    assert decide(a, utc_now, 60, 30).come_back_hhmm == "08:00"


def test_focus_goes_to_the_first_new_checkin_then_a_reprint():
    a, b = appt(NOW - timedelta(hours=3)), appt(NOW + timedelta(minutes=30))
    ds = [decide(a, NOW, 60, 30), decide(b, NOW, 60, 30)]
    assert first_allowed(ds) == 1
    ds = [decide(a, NOW, 60, 30, already=True), decide(b, NOW - timedelta(hours=3), 60, 30)]
    assert first_allowed(ds) == 0
    assert first_allowed([decide(b, NOW - timedelta(hours=3), 60, 30)]) is None


def test_checkins_survive_a_restart_and_reset_the_next_day(tmp_path: Path):
    log = CheckinLog(tmp_path)
    log.add("A20261123-0042", NOW.date(), "B023")
    again = CheckinLog(tmp_path)
    assert again.has("a20261123-0042", NOW.date())
    assert not again.has("A20261123-0042", date(2026, 11, 24))
    again.add("A20261124-0001", date(2026, 11, 24), "B001")
    assert not CheckinLog(tmp_path).has("A20261123-0042", NOW.date())
    (tmp_path / "checkins.json").write_text("{torn")
    assert not CheckinLog(tmp_path).has("A20261124-0001", date(2026, 11, 24))
