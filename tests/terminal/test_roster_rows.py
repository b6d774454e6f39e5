"""The small roster (`terminal.roster_rows.parse_roster`) accepts exactly what
`payloads.parse(payloads.Roster, ...)` accepts, with the same values, and refuses the rest with
the same message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from terminal import payloads
from terminal.roster_rows import AppointmentRow, parse_roster

TOKEN = "0123456789abcdef" * 2


def appt(i: int = 0, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"A20261123-{i:04d}",
        "token": TOKEN,
        "name": "张*三",
        "department_id": "cardio",
        "department": "心内科",
        "doctor": "李明",
        "room": "门诊3楼 305诊室",
        "slot_start": "2026-11-23T09:00:00+08:00",
        "slot_end": "2026-11-23T09:30:00+08:00",
        "queue_no": f"B{i:03d}",
    }
    for k, v in kw.items():
        if v is ...:
            row.pop(k)
        else:
            row[k] = v
    return row


def roster(*appts: Any, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "date": "2026-11-23",
        "generated": "2026-11-23T06:00:00+08:00",
        "appointments": list(appts) if appts else [appt()],
    }
    for k, v in kw.items():
        if v is ...:
            doc.pop(k)
        else:
            doc[k] = v
    return doc


def many(n: int, bad_at: int, **kw: Any) -> dict[str, Any]:
    return roster(*(appt(i, **(kw if i == bad_at else {})) for i in range(n)))


REFUSED: list[Any] = [
    # a slot time no kiosk can compute with: many exports' "no date", the end of time
    roster(appt(slot_start="0001-01-01T00:00:00", slot_end="0001-01-01T00:00:00")),
    roster(appt(slot_start="0001-01-01T00:00:00+08:00", slot_end="0001-01-01T00:30:00+08:00")),
    roster(appt(slot_end="9999-12-31T23:59:59+08:00")),
    # one id, two appointments (a broken HIS export): one patient would see another's
    roster(appt(0), appt(1), appt(0, queue_no="P999", name="钱*多", token="b" * 32)),
    roster(appt(0), appt(1, id="a20261123-0000", department="皮肤科")),  # case aside
    many(300, 299, id="A20261123-0003"),  # in a later chunk than the first
]
"""Rosters refused since the audit of 2026-12-03 (each also in CASES: both paths agree)."""

CASES: list[Any] = [
    # the head
    roster(),
    roster(v=...),
    roster(v=2),
    roster(v="1"),
    roster(v=True),
    roster(v=1.0),
    roster(date=...),
    roster(date="2026-13-01"),
    roster(date=20261123),
    roster(date="2026-11-23T00:00:00"),
    roster(date=None),
    roster(generated=...),
    roster(generated=None),
    roster(generated="2026"),
    roster(generated=5),
    roster(generated="x" * 41),
    roster(extra={"newer": [1, 2, {"deep": []}]}),
    roster(appointments=...),
    roster(appointments=[]),
    roster(appointments={}),
    roster(appointments="x"),
    roster(appointments=None),
    # an appointment
    roster(1),
    roster("x"),
    roster(None),
    roster([appt()]),
    roster(appt(id=...)),
    roster(appt(id="")),
    roster(appt(id="x" * 64)),
    roster(appt(id="x" * 65)),
    roster(appt(id=5)),
    roster(appt(token=None)),
    roster(appt(token=...)),
    roster(appt(token=TOKEN.upper())),
    roster(appt(token=TOKEN[:31])),
    roster(appt(token=TOKEN + "\n")),
    roster(appt(token=TOKEN + "0")),
    roster(appt(lookup=[TOKEN, TOKEN[::-1]])),
    roster(appt(lookup=[TOKEN, "nope"])),
    roster(appt(lookup=TOKEN)),
    roster(appt(lookup=None)),
    roster(appt(name=...)),
    roster(appt(name="名" * 32)),
    roster(appt(name="名" * 33)),
    roster(appt(department_id="")),
    roster(appt(department_id="d" * 65)),
    roster(appt(department="")),
    roster(appt(department=...)),
    roster(appt(doctor=...)),
    roster(appt(doctor=None)),
    roster(appt(room="r" * 65)),
    roster(appt(slot_start="2026-11-23 09:00")),
    roster(appt(slot_start="2026-11-23T25:00:00+08:00")),
    roster(appt(slot_start="tomorrow!!")),
    roster(appt(slot_start="2026-11-23")),
    roster(appt(slot_end="2026-11-23T09:30:00")),  # naive: the kiosk's local time
    roster(appt(slot_end="2026-11-23T08:59:00+08:00")),  # an end before the start: the start
    roster(appt(slot_end=...)),
    roster(appt(slot_end=20261123)),
    roster(appt(queue_no="")),
    roster(appt(queue_no="q" * 17)),
    roster(appt(queue_no=7)),
    roster(appt(extra="ignored", more={"a": [1]})),
    roster(appt(0), appt(1), appt(0)),  # the same appointment twice: allowed
    roster(appt(0), appt(1), appt(0, token="b" * 32)),  # once per card: allowed
    *REFUSED,
    many(300, 299, queue_no=""),
    many(300, 150, token="bad"),
    [roster()],
    "roster",
    None,
]


def outcome(parse: Any, payload: bytes) -> Any:
    try:
        doc = parse(payload)
    except payloads.PayloadError as e:
        return ("refused", str(e))
    rows = [
        {
            f: tuple(getattr(a, f)) if f == "lookup" else getattr(a, f)
            for f in AppointmentRow._fields
        }
        for a in doc.appointments
    ]
    return ("accepted", doc.v, doc.date, doc.generated, doc.model_fields_set, rows)


@pytest.mark.parametrize("doc", CASES)
def test_the_small_roster_accepts_and_refuses_what_the_model_does(doc: Any) -> None:
    payload = json.dumps(doc, ensure_ascii=False).encode()
    want = outcome(lambda p: payloads.parse(payloads.Roster, p), payload)
    assert outcome(parse_roster, payload) == want


@pytest.mark.parametrize("doc", REFUSED)
def test_rosters_no_kiosk_could_use_are_refused_naming_the_fault(doc: Any) -> None:
    payload = json.dumps(doc, ensure_ascii=False).encode()
    with pytest.raises(payloads.PayloadError, match="slot|appointment id") as e:
        payloads.parse(payloads.Roster, payload)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xfe", b"{", b"[" * 5000, b"\xef\xbb\xbf" + json.dumps(roster()).encode()],
)
def test_bytes_that_are_no_roster_get_the_same_fault(payload: bytes) -> None:
    want = outcome(lambda p: payloads.parse(payloads.Roster, p), payload)
    assert outcome(parse_roster, payload) == want


def test_repeated_strings_are_shared_and_rows_are_tuples() -> None:
    doc = parse_roster(json.dumps(roster(*(appt(i) for i in range(3)))).encode())
    a, b, _ = doc.appointments
    assert isinstance(a, AppointmentRow) and isinstance(doc, payloads.Roster)
    assert a.department is b.department and a.slot_start is b.slot_start and a.room is b.room
    assert a.id != b.id
