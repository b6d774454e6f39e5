"""Today's appointment roster (SPEC 6.5) indexed for the kiosk: by card token, lookup token,
appointment id and the id's digits. Validation and keeping it (memory, disk, another date's
aside) are terminal.documents' job; this module only turns a valid document into lookups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from terminal import payloads


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


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isdigit())


def _when(value: str) -> datetime:
    dt = datetime.fromisoformat(value)  # checked by terminal.payloads.Appointment
    return dt if dt.tzinfo is not None else dt.astimezone()  # naive: the kiosk's local time


def _appointment(a: payloads.Appointment) -> Appointment:
    start = _when(a.slot_start)
    return Appointment(
        id=a.id,
        token=a.token or "",
        name=a.name,
        department_id=a.department_id,
        department=a.department,
        doctor=a.doctor,
        room=a.room,
        slot_start=start,
        slot_end=max(start, _when(a.slot_end)),
        queue_no=a.queue_no,
        lookup=tuple(a.lookup),
    )


class Roster:
    """One day's appointments; lookups are dictionary hits (microseconds for 20,000 entries)."""

    def __init__(
        self, day: date, generated: str, appointments: list[Appointment], source: str = ""
    ) -> None:
        self.date = day
        self.generated = generated
        self.appointments = appointments
        self.source = source
        self._by_id: dict[str, Appointment] = {}
        self._by_token: dict[str, list[Appointment]] = {}
        self._by_digits: dict[str, Appointment] = {}
        for a in appointments:
            self._by_id[a.id.upper()] = a
            self._by_digits.setdefault(_digits(a.id), a)
            for t in (a.token, *a.lookup):
                if t:
                    self._by_token.setdefault(t, []).append(a)
        for rows in self._by_token.values():
            rows.sort(key=lambda a: (a.slot_start, a.id))

    def __len__(self) -> int:
        return len(self.appointments)

    def for_token(self, token: str) -> list[Appointment]:
        return list(self._by_token.get(token, ()))

    def get(self, appointment_id: str) -> Appointment | None:
        return self._by_id.get(appointment_id.strip().upper())

    def by_digits(self, typed: str) -> Appointment | None:
        """The appointment whose id has exactly these digits (A20261123-0042: 202611230042)."""
        d = _digits(typed)
        return self._by_digits.get(d) if d else None

    def is_for(self, day: date) -> bool:
        return self.date == day

    @classmethod
    def of(cls, doc: payloads.Roster, source: str = "") -> Roster:
        """The kiosk's index of a validated roster document."""
        return cls(
            doc.date, doc.generated or "", [_appointment(a) for a in doc.appointments], source
        )

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any], source: str = "") -> Roster:
        """Validate with terminal.payloads (PayloadError naming the field) and index."""
        return cls.of(payloads.parse(payloads.Roster, payload), source)
