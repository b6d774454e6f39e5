"""A roster validated a few appointments at a time and kept small: a tuple per appointment.

`payloads.parse(payloads.Roster, ...)` of a 20,000-entry roster builds 20,000 pydantic models at
once next to the decoded JSON: ~42 MB held for the day and a peak of ~90 MB that the allocator
does not give back. `parse_roster` validates exactly as `payloads.Roster` does, with the same
models (the head against `payloads.Roster`, the appointments against `payloads.Appointment`,
CHUNK at a time), but turns each appointment into an `AppointmentRow` as soon as it is valid and
lets its JSON go, and shares the strings that repeat (departments, doctors, rooms, slot times). The result is a
`payloads.Roster` whose appointments are those rows. Any fault: the whole payload is validated
again by `payloads.parse`, so that a refused roster is refused with the same message as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from terminal import payloads


class AppointmentRow(NamedTuple):
    """`payloads.Appointment`'s fields, validated, in a tuple (`lookup` a tuple too)."""

    id: str
    token: str | None
    lookup: tuple[str, ...]
    name: str
    department_id: str
    department: str
    doctor: str
    room: str
    slot_start: str
    slot_end: str
    queue_no: str


_PROBE = {
    "id": "probe",
    "department_id": "probe",
    "department": "probe",
    "slot_start": "2000-01-01T00:00:00",
    "slot_end": "2000-01-01T00:00:00",
    "queue_no": "1",
}
"""A valid appointment: the head of a roster is validated with it in place of the list."""

CHUNK = 128
"""Appointments validated per call: the per-call cost shared (~3x faster than one by one), the
models alive at once few."""
_CHECK = TypeAdapter(list[payloads.Appointment])


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Without Python's cycle collector for a while: decoding and validating a big roster makes
    ~0.5 million containers, none in a cycle, and the collector would walk the whole heap
    again and again meanwhile (~35 % of a 20,000-entry roster's parse and index)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse_roster(payload: bytes | str) -> payloads.Roster:
    """Like `payloads.parse(payloads.Roster, payload)`: the same document or the same
    PayloadError, with the appointments as `AppointmentRow`s."""
    with no_cycle_collection():
        obj = payloads.loads(payload)
        doc = _rows(obj) if isinstance(obj, dict) else None
    if doc is None:
        return payloads.parse(payloads.Roster, payload)  # the fault, named as ever
    return doc


def _rows(obj: dict[str, Any]) -> payloads.Roster | None:
    """The roster, or None when anything in it is not valid (`obj` is consumed)."""
    items = obj.get("appointments")
    if type(items) is not list or not items:
        return None
    try:
        head = payloads.Roster.model_validate(
            {**{k: v for k, v in obj.items() if k != "appointments"}, "appointments": [_PROBE]}
        )
    except ValidationError:
        return None
    shared: dict[str, str] = {}
    one = shared.setdefault
    rows: list[AppointmentRow] = []
    add = rows.append
    for start in range(0, len(items), CHUNK):
        end = start + CHUNK
        try:
            models = _CHECK.validate_python(items[start:end])
        except ValidationError:
            return None
        items[start:end] = [None] * len(models)  # their JSON can go now
        for a in models:
            add(
                AppointmentRow(
                    a.id,
                    a.token,
                    tuple(a.lookup),
                    a.name,
                    one(a.department_id, a.department_id),
                    one(a.department, a.department),
                    one(a.doctor, a.doctor),
                    one(a.room, a.room),
                    one(a.slot_start, a.slot_start),
                    one(a.slot_end, a.slot_end),
                    a.queue_no,
                )
            )
    return payloads.Roster.model_construct(
        head.model_fields_set, v=head.v, date=head.date, generated=head.generated, appointments=rows
    )
