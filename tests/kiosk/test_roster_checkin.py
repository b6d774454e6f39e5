"""Roster parsing and lookup, the rosters on disk, and the check-in window."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from careterm.demo_data import DEMO_PATIENTS, demo_roster
from kiosk.checkin import decide, first_allowed
from kiosk.roster import Roster
from terminal.payloads import PayloadError

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=CST)


def roster_doc(day: str = "2026-11-23", **over) -> dict:
    row = {
        "id": "A20261123-0042",
        "token": "7" * 32,
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


def test_lookup_by_token_and_id_in_a_20000_roster_uses_the_index():
    doc = demo_roster(b"salt", NOW.date(), size=20000, now=NOW)
    r = Roster.parse(json.dumps(doc).encode())
    assert len(r) == 20000 + len(DEMO_PATIENTS)
    token = doc["appointments"][12345]["token"]
    r._rows = []  # a lookup that scanned the rows would now find nothing
    found = r.for_token(token)
    by_id = r.get(doc["appointments"][12345]["id"].lower())
    assert doc["appointments"][12345]["id"] in [a.id for a in found]
    assert by_id is not None and by_id.token == token


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.update(v=2), "v"),
        (lambda d: d.update(date="23.11.2026"), "date"),
        (
            lambda d: d["appointments"][0].update(slot_start="9 o'clock, Monday"),
            "appointments.0.slot_start",
        ),
        (lambda d: d["appointments"][0].pop("queue_no"), "appointments.0.queue_no"),
        (lambda d: d.update(appointments={}), "appointments"),
        (lambda d: d.update(appointments=[]), "appointments"),
    ],
)
def test_bad_rosters_are_refused_naming_the_field(mutate, where):
    """Validation is terminal.payloads' (one place); the kiosk only indexes a valid roster."""
    doc = roster_doc()
    mutate(doc)
    with pytest.raises(PayloadError, match=rf"^{re.escape(where)}:"):
        Roster.parse(json.dumps(doc))
    with pytest.raises(PayloadError, match="not UTF-8"):
        Roster.parse(b"\xff not json")


def test_a_naive_slot_time_is_the_kiosks_local_time_and_an_end_before_the_start_is_the_start():
    r = Roster.parse(roster_doc(slot_start="2026-11-23T09:00:00", slot_end="2026-11-23T08:00:00"))
    a = r.appointments[0]
    assert a.slot_start.tzinfo is not None and a.slot_end == a.slot_start


def test_typed_lookups_find_appointments_by_token_and_by_the_ids_digits():
    from terminal.privacy import lookup_token

    salt = b"s"
    tok = lookup_token(salt, "phone_birth", "13812345678" + "19560312")
    r = Roster.parse(roster_doc(lookup=[tok]))
    assert [a.id for a in r.for_token(tok)] == ["A20261123-0042"]
    assert r.by_digits("202611230042").id == "A20261123-0042"
    assert r.by_digits("2026-1123 0042").id == "A20261123-0042"
    assert r.by_digits("") is None and r.by_digits("99") is None
    assert lookup_token(salt, "appointment", "a2026-11") == lookup_token(
        salt, "appointment", "A2026-11"
    )
    with pytest.raises(PayloadError, match="lookup"):
        Roster.parse(roster_doc(lookup="nope"))


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


def test_a_full_name_in_a_roster_is_masked_before_any_screen_or_ticket_shows_it():
    """A HIS that publishes SPEC 6.5 itself may send full names: the kiosk masks them as the
    site's roster tool does; a name the site masked already is shown as it is."""
    for given, shown in (("欧阳建国", "欧**国"), ("李雷", "李*"), ("张*三", "张*三"), ("", "")):
        r = Roster.parse(roster_doc(name=given))
        assert r.appointments[0].name == shown
