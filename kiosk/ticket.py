"""What the kiosk prints (SPEC 6.0): the check-in ticket and the feedback slip, as printer-neutral
`Document`s; the drivers turn them into ESC/POS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from drivers.printer.document import QR, Document, Feed, Rule, Text
from kiosk.files import read_json, write_json_durably
from kiosk.i18n import tr
from kiosk.roster import Appointment

QR_PREFIX = "CT1:"
"""The ticket's QR carries the appointment in the reader's `appointment_qr` form, so scanning a
ticket at any kiosk finds the appointment again (a reprint)."""
FEEDBACK_COUNTER_NAME = "feedback_counter.json"


def appointment_qr(appointment_id: str) -> str:
    return QR_PREFIX + appointment_id


def slot_text(a: Appointment) -> str:
    return f"{a.slot_start:%H:%M}-{a.slot_end:%H:%M}"


@dataclass(frozen=True)
class Place:
    """Where the patient goes: the floor from the directory, the room from the roster."""

    floor: str = ""
    location: str = ""
    department_en: str = ""


def checkin_ticket(
    a: Appointment,
    place: Place,
    lang: str,
    device_id: str,
    printed_at: datetime,
    repeat: bool = False,
) -> Document:
    dept = a.department if lang == "zh" or not place.department_en else place.department_en
    where = " ".join(x for x in (place.floor, a.room) if x)
    blocks: list = [
        Text(tr("ticket_title", lang), align="center", bold=True),
    ]
    if repeat:
        blocks.append(Text(tr("ticket_reprint", lang), align="center"))
    blocks += [
        Rule(),
        Text(tr("ticket_queue_no", lang), align="center"),
        Text(a.queue_no, align="center", bold=True, double=True),
        Rule(),
        Text(f"{tr('ticket_department', lang)}: {dept}", bold=True),
        Text(f"{tr('ticket_where', lang)}: {where}"),
    ]
    if place.location:
        blocks.append(Text(f"{tr('ticket_route', lang)}: {place.location}"))
    blocks += [
        Text(f"{tr('ticket_doctor', lang)}: {a.doctor}"),
        Text(f"{tr('ticket_time', lang)}: {a.slot_start:%Y-%m-%d} {slot_text(a)}"),
        Text(f"{tr('ticket_patient', lang)}: {a.name}"),
        Feed(1),
        QR(appointment_qr(a.id), size=6),
        Text(a.id, align="center"),
        Rule(),
        Text(tr("ticket_footer", lang), align="center"),
        Text(f"{device_id} {printed_at:%Y-%m-%d %H:%M:%S}", align="center"),
        Feed(2),
    ]
    return Document(tuple(blocks), title=f"checkin {a.queue_no}")


def feedback_slip(
    tracking_no: str,
    category: str,
    department: str,
    topics: list[str],
    callback: bool,
    lang: str,
    printed_at: datetime,
) -> Document:
    blocks: list = [
        Text(tr("slip_title", lang), align="center", bold=True),
        Rule(),
        Text(tr("slip_tracking", lang), align="center"),
        Text(tracking_no, align="center", bold=True),
        Rule(),
        Text(f"{tr('slip_category', lang)}: {tr('cat_' + category, lang)}"),
    ]
    if department:
        blocks.append(Text(f"{tr('ticket_department', lang)}: {department}"))
    if topics:
        blocks.append(Text(f"{tr('slip_topics', lang)}: {', '.join(topics)}"))
    blocks += [
        Text(tr("slip_process", lang)),
        Text(tr("slip_callback" if callback else "slip_no_callback", lang)),
        Feed(1),
        QR(tracking_no, size=5),
        Text(f"{printed_at:%Y-%m-%d %H:%M}", align="center"),
        Feed(2),
    ]
    return Document(tuple(blocks), title=f"feedback {tracking_no}")


class TrackingCounter:
    """`F-YYYYMMDD-<device id>-NNNN`, numbered from 1 each day; the count is synced to disk
    before the number is shown, so a restart never hands out a number twice."""

    def __init__(self, data_dir: Path, device_id: str) -> None:
        self.path = Path(data_dir) / FEEDBACK_COUNTER_NAME
        self.device_id = device_id

    def next(self, day: date) -> str:
        doc = read_json(self.path)
        key = day.strftime("%Y%m%d")
        n = 0
        if isinstance(doc, dict) and doc.get("date") == key and isinstance(doc.get("n"), int):
            n = doc["n"]
        n += 1
        write_json_durably(self.path, {"date": key, "n": n})
        return f"F-{key}-{self.device_id}-{n:04d}"
