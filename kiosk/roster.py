"""The day's appointment roster (SPEC 6.5): parsed once, indexed by card token and appointment id,
kept on disk so the kiosk checks patients in while the network is down."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from kiosk.files import write_bytes_durably

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
        for a in appointments:
            self._by_id[a.id.upper()] = a
            if a.token:
                self._by_token.setdefault(a.token, []).append(a)
        for rows in self._by_token.values():
            rows.sort(key=lambda a: (a.slot_start, a.id))

    def __len__(self) -> int:
        return len(self.appointments)

    def for_token(self, token: str) -> list[Appointment]:
        return list(self._by_token.get(token, ()))

    def get(self, appointment_id: str) -> Appointment | None:
        return self._by_id.get(appointment_id.strip().upper())

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
                )
            )
        return cls(day, str(doc.get("generated") or ""), appts, source)


class RosterStore:
    """Which roster the kiosk uses: the last one received over MQTT (kept in data_dir) or the
    `[kiosk].roster_file`; of the two, today's wins, then the one generated last."""

    def __init__(self, data_dir: Path, roster_file: str = "") -> None:
        self.path = Path(data_dir) / STORED_NAME
        self.roster_file = Path(roster_file) if roster_file else None
        self._file_mtime: float | None = None
        self.current: Roster | None = None
        self.problem = ""
        """Why the last roster offered was refused (for the maintenance screen)."""

    def load(self, today: date) -> Roster | None:
        """Read the stored and configured rosters at start-up."""
        candidates = []
        for path, label in ((self.path, "stored"), (self.roster_file, "roster_file")):
            if path is None or not path.exists():
                continue
            try:
                r = Roster.parse(path.read_bytes(), source=f"{label} {path}")
                candidates.append(r)
            except (OSError, RosterError) as e:
                self.problem = f"{path}: {e}"
                log.error("roster %s ignored: %s", path, e)
            if label == "roster_file":
                self._file_mtime = _mtime(path)
        self.current = _best(candidates, today)
        if self.current is not None:
            log.info(
                "roster of %s loaded from %s: %d appointments",
                self.current.date,
                self.current.source,
                len(self.current),
            )
        return self.current

    def received(self, payload: bytes, today: date) -> Roster:
        """A retained `R/S/roster` arrived: use it and keep it on disk for offline check-in."""
        try:
            r = Roster.parse(payload, source="mqtt")
        except RosterError as e:
            self.problem = f"roster from MQTT: {e}"
            raise
        write_bytes_durably(self.path, payload)
        self.current = _best([c for c in (self.current, r) if c is not None], today, prefer=r)
        self.problem = ""
        log.info("roster of %s received: %d appointments", r.date, len(r))
        return r

    def refresh_file(self, today: date) -> None:
        """Pick up an edited roster_file without a restart (a stat per call; cheap)."""
        if self.roster_file is None:
            return
        m = _mtime(self.roster_file)
        if m is None or m == self._file_mtime:
            return
        self._file_mtime = m
        try:
            r = Roster.parse(
                self.roster_file.read_bytes(), source=f"roster_file {self.roster_file}"
            )
        except (OSError, RosterError) as e:
            self.problem = f"{self.roster_file}: {e}"
            log.error("roster_file %s ignored: %s", self.roster_file, e)
            return
        self.current = _best([c for c in (self.current, r) if c is not None], today, prefer=r)

    def today(self, today: date) -> Roster | None:
        """The roster usable for check-in today; None when only another day's roster is known."""
        r = self.current
        return r if r is not None and r.is_for(today) else None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _best(candidates: list[Roster], today: date, prefer: Roster | None = None) -> Roster | None:
    if not candidates:
        return None

    def rank(r: Roster) -> tuple[bool, date, str, bool]:
        return (r.is_for(today), r.date, r.generated, r is prefer)

    return max(candidates, key=rank)
