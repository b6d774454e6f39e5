"""When an appointment may be checked in, and which ones this kiosk already checked in today."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

from kiosk.files import read_json, write_json_durably
from kiosk.roster import Appointment

log = logging.getLogger("careterm.kiosk.checkin")

Timing = Literal["early", "on_time", "late"]
Refusal = Literal["too_early", "too_late"]
CHECKINS_NAME = "checkins.json"


@dataclass(frozen=True)
class Decision:
    """What the kiosk may do with one appointment now."""

    appointment: Appointment
    allowed: bool
    timing: Timing | None = None
    refusal: Refusal | None = None
    come_back_at: datetime | None = None
    """For `too_early`: the first moment check-in opens (in the slot's time zone)."""
    repeat: bool = False
    """Already checked in here today: choosing it reprints the ticket."""

    @property
    def come_back_hhmm(self) -> str:
        return self.come_back_at.strftime("%H:%M") if self.come_back_at else ""


def decide(
    appt: Appointment, now: datetime, early_min: int, late_min: int, already: bool = False
) -> Decision:
    """early: before the slot starts; on_time: within the slot; late: after it ended.

    Check-in is open from `early_min` before the slot start to `late_min` after the slot end.
    A patient already checked in today may always reprint, whatever the time.
    """
    opens = appt.slot_start - timedelta(minutes=early_min)
    closes = appt.slot_end + timedelta(minutes=late_min)
    if now < appt.slot_start:
        timing: Timing = "early"
    elif now <= appt.slot_end:
        timing = "on_time"
    else:
        timing = "late"
    if already:
        return Decision(appt, True, timing, repeat=True)
    if now < opens:
        return Decision(
            appt, False, timing, "too_early", come_back_at=opens.astimezone(appt.slot_start.tzinfo)
        )
    if now > closes:
        return Decision(appt, False, timing, "too_late")
    return Decision(appt, True, timing)


def decide_all(
    appts: list[Appointment], now: datetime, early_min: int, late_min: int, done: CheckinLog
) -> list[Decision]:
    return [decide(a, now, early_min, late_min, done.has(a.id, now.date())) for a in appts]


def first_allowed(decisions: list[Decision]) -> int | None:
    """Index of the appointment that gets the focus: the first new check-in, else a reprint."""
    for want_repeat in (False, True):
        for i, d in enumerate(decisions):
            if d.allowed and d.repeat == want_repeat:
                return i
    return None


class CheckinLog:
    """Today's check-ins of this kiosk, on disk (synced) so a restart still knows them."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / CHECKINS_NAME
        doc = read_json(self.path)
        self._day: str = ""
        self._ids: dict[str, str] = {}
        if isinstance(doc, dict) and isinstance(doc.get("ids"), dict):
            self._day = str(doc.get("date") or "")
            self._ids = {str(k): str(v) for k, v in doc["ids"].items()}

    def has(self, appointment_id: str, day: date) -> bool:
        return self._day == day.isoformat() and appointment_id.upper() in self._ids

    def add(self, appointment_id: str, day: date, queue_no: str) -> None:
        if self._day != day.isoformat():
            self._day, self._ids = day.isoformat(), {}
        self._ids[appointment_id.upper()] = queue_no
        write_json_durably(self.path, {"date": self._day, "ids": self._ids})

    def count(self, day: date) -> int:
        return len(self._ids) if self._day == day.isoformat() else 0
