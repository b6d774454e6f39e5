"""When an appointment may be checked in: the check-in window around its slot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kiosk.roster import Appointment

Timing = Literal["early", "on_time", "late"]
Refusal = Literal["too_early", "too_late"]


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


def first_allowed(decisions: list[Decision]) -> int | None:
    """Index of the appointment that gets the focus: the first new check-in, else a reprint."""
    for want_repeat in (False, True):
        for i, d in enumerate(decisions):
            if d.allowed and d.repeat == want_repeat:
                return i
    return None
