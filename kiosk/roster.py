"""The day's appointment roster (SPEC 6.5): parsed once, indexed by card token and appointment id,
kept on disk so the kiosk checks patients in while the network is down."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("careterm.kiosk.roster")

STORED_NAME = "roster.json"


class RosterError(ValueError):
    """A roster that cannot be used; the message says what is wrong with it."""


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


def _when(value: Any, field: str, idx: int) -> datetime:
    if not isinstance(value, str):
        raise RosterError(f"appointments[{idx}].{field}: missing or not a string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise RosterError(f"appointments[{idx}].{field}: not an ISO time ({value!r})") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a naive time is the kiosk's local time
    return dt


def _text(row: dict[str, Any], field: str, idx: int, required: bool = True) -> str:
    v = row.get(field)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v):
        raise RosterError(f"appointments[{idx}].{field}: missing or not a string")
    return v


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
    def parse(cls, payload: bytes | str | dict[str, Any], source: str = "") -> Roster:
        """Validate a roster document; raise RosterError naming the first bad field."""
        if isinstance(payload, bytes | str):
            try:
                doc = json.loads(payload)
            except (ValueError, UnicodeDecodeError) as e:
                raise RosterError(f"not JSON: {e}") from None
        else:
            doc = payload
        if not isinstance(doc, dict):
            raise RosterError("not a JSON object")
        if doc.get("v") != 1:
            raise RosterError(f"v: unsupported roster version {doc.get('v')!r} (expected 1)")
        try:
            day = date.fromisoformat(str(doc.get("date")))
        except ValueError:
            raise RosterError(f"date: not a YYYY-MM-DD date ({doc.get('date')!r})") from None
        rows = doc.get("appointments")
        if not isinstance(rows, list):
            raise RosterError("appointments: missing or not a list")
        appts: list[Appointment] = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RosterError(f"appointments[{i}]: not an object")
            start = _when(row.get("slot_start"), "slot_start", i)
            lookup = row.get("lookup") or []
            if not isinstance(lookup, list) or not all(isinstance(x, str) for x in lookup):
                raise RosterError(f"appointments[{i}].lookup: not a list of tokens")
            end = _when(row.get("slot_end"), "slot_end", i) if row.get("slot_end") else start
            appts.append(
                Appointment(
                    id=_text(row, "id", i),
                    token=_text(row, "token", i, required=False),
                    name=_text(row, "name", i, required=False),
                    department_id=_text(row, "department_id", i),
                    department=_text(row, "department", i, required=False),
                    doctor=_text(row, "doctor", i, required=False),
                    room=_text(row, "room", i, required=False),
                    slot_start=start,
                    slot_end=max(start, end),
                    queue_no=_text(row, "queue_no", i),
                    lookup=tuple(lookup),
                )
            )
        return cls(day, str(doc.get("generated") or ""), appts, source)


class RosterStore:
    """Reads the rosters on disk: the last one received over MQTT (kept in data_dir) and the
    `[kiosk].roster_file`; which one is used is the machine's decision."""

    def __init__(self, data_dir: Path, roster_file: str = "") -> None:
        self.path = Path(data_dir) / STORED_NAME
        self.roster_file = Path(roster_file) if roster_file else None
        self._file_mtime: float | None = None
        self.candidates: list[Roster] = []
        self.problem = ""
        """Why the last roster file read was refused (for the maintenance screen)."""

    def load(self, today: date | None = None) -> list[Roster]:
        """Read the stored and configured rosters at start-up."""
        self.candidates = []
        for path, label in ((self.path, "stored"), (self.roster_file, "roster_file")):
            if path is None or not path.exists():
                continue
            if label == "roster_file":
                self._file_mtime = _mtime(path)
            try:
                self.candidates.append(Roster.parse(path.read_bytes(), source=f"{label} {path}"))
            except (OSError, RosterError) as e:
                self.problem = f"{path}: {e}"
                log.error("roster %s ignored: %s", path, e)
        return self.candidates

    def refresh_file(self) -> Roster | None:
        """The roster_file again if it changed since the last look (a stat per call; cheap)."""
        if self.roster_file is None:
            return None
        m = _mtime(self.roster_file)
        if m is None or m == self._file_mtime:
            return None
        self._file_mtime = m
        try:
            return Roster.parse(
                self.roster_file.read_bytes(), source=f"roster_file {self.roster_file}"
            )
        except (OSError, RosterError) as e:
            self.problem = f"{self.roster_file}: {e}"
            log.error("roster_file %s ignored: %s", self.roster_file, e)
            return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
