"""Today's appointment roster (SPEC 6.5) indexed for the kiosk: by card token, lookup token,
appointment id and the id's digits. Validation and keeping it (memory, disk, another date's
aside) are terminal.documents' job; this module only turns a valid document into lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from terminal import payloads
from terminal.privacy import shown_roster_name
from terminal.roster_index import AppointmentRow, RosterIndex, id_digits, id_key
from terminal.roster_rows import no_cycle_collection


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    token: str
    name: str
    """Already masked by the site (`张*三`): the roster never carries a full name."""
    department_id: str
    department: str
    doctor: str
    room: str
    slot_start: datetime
    slot_end: datetime
    queue_no: str
    lookup: tuple[str, ...] = ()
    """Tokens of typed lookups (`terminal.privacy.lookup_token`: kinds `appointment`,
    `phone_birth`), careterm's roster extension for SPEC 9.6."""


def _when(value: str) -> datetime:
    dt = datetime.fromisoformat(value)  # checked by terminal.payloads.Appointment
    return dt if dt.tzinfo is not None else dt.astimezone()  # naive: the kiosk's local time


class _Times(dict[str, datetime]):
    """Slot times parsed once each (a day has a few dozen distinct ones), and shared."""

    def __missing__(self, value: str) -> datetime:
        dt = self[value] = _when(value)
        return dt


def _appointment(a: payloads.Appointment | AppointmentRow, when: _Times) -> Appointment:
    """The kiosk's appointment of a validated row (slot times parsed once per roster)."""
    start = when[a.slot_start]
    end = when[a.slot_end]
    return Appointment(
        id=a.id,
        token=a.token or "",
        name=shown_roster_name(a.name),
        department_id=a.department_id,
        department=a.department,
        doctor=a.doctor,
        room=a.room,
        slot_start=start,
        slot_end=end if end > start else start,
        queue_no=a.queue_no,
        lookup=tuple(a.lookup),
    )


Row = payloads.Appointment | AppointmentRow
"""An appointment of a validated roster document (terminal.roster_rows keeps them as tuples)."""


class _InMemory:
    """The lookups of rows held in a list (a roster parsed without an index folder: tests,
    tools), with `RosterIndex`'s rules; dictionary hits."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self._by_id: dict[str, Row] = {}
        self._by_token: dict[str, list[Row]] = {}
        self._by_digits: dict[str, Row] = {}
        with no_cycle_collection():
            self._index(rows)

    def _index(self, rows: Sequence[Row]) -> None:
        by_id, by_token, by_digits = self._by_id, self._by_token, self._by_digits
        for a in rows:
            key = id_key(a.id)
            by_id[key if key != a.id else a.id] = a  # (the id itself when it is upper case)
            by_digits.setdefault(id_digits(a.id), a)
            if a.token:
                by_token.setdefault(a.token, []).append(a)
            for t in a.lookup:
                if t:
                    by_token.setdefault(t, []).append(a)

    def with_token(self, token: str) -> Sequence[Row]:
        return self._by_token.get(token, ())

    def with_id(self, key: str) -> Row | None:
        return self._by_id.get(key)

    def with_digits(self, digits: str) -> Row | None:
        return self._by_digits.get(digits)


class Roster:
    """One day's appointments and their lookups: a few rows read from the roster's index file
    (terminal.roster_index) per lookup, or dictionary hits for rows held in a list.

    An `Appointment` (datetimes) is only made for the few a lookup returns, not 20,000 of them
    at start-up (~0.2 s and ~5 MB on a desktop)."""

    def __init__(self, day: date, generated: str, rows: Sequence[Row], source: str = "") -> None:
        self.date = day
        self.generated = generated
        self.source = source
        self._rows = rows
        self._when = _Times()
        self._lookup = rows if isinstance(rows, RosterIndex) else _InMemory(rows)

    @property
    def appointments(self) -> list[Appointment]:
        """Every appointment, in the document's order."""
        return [_appointment(a, self._when) for a in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def for_token(self, token: str) -> list[Appointment]:
        """The patient's appointments by slot time (then id; the document's order for a tie)."""
        when = self._when
        found = sorted(self._lookup.with_token(token), key=lambda a: (when[a.slot_start], a.id))
        return [_appointment(a, when) for a in found]

    def get(self, appointment_id: str) -> Appointment | None:
        return self._make(self._lookup.with_id(id_key(appointment_id.strip())))

    def by_digits(self, typed: str) -> Appointment | None:
        """The appointment whose id has exactly these digits (A20261123-0042: 202611230042)."""
        d = id_digits(typed)
        return self._make(self._lookup.with_digits(d)) if d else None

    def _make(self, row: Row | None) -> Appointment | None:
        return _appointment(row, self._when) if row is not None else None

    def is_for(self, day: date) -> bool:
        return self.date == day

    @classmethod
    def of(cls, doc: payloads.Roster, source: str = "") -> Roster:
        """The kiosk's index of a validated roster document."""
        return cls(doc.date, doc.generated or "", doc.appointments, source)

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any], source: str = "") -> Roster:
        """Validate with terminal.payloads (PayloadError naming the field) and index."""
        return cls.of(payloads.parse(payloads.Roster, payload), source)
