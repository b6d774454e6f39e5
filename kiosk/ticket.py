"""What the kiosk prints (SPEC 6.0): the check-in ticket and the feedback slip, as printer-neutral
`Document`s; the drivers turn them into ESC/POS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.printer.document import QR, Document, Feed, Rule, Text
from kiosk.i18n import tr
from kiosk.roster import Appointment

QR_PREFIX = "CT1:"
"""The ticket's QR carries the appointment in the reader's `appointment_qr` form, so scanning a
ticket finds the appointment again: a reprint at the kiosk that checked it in (each kiosk
remembers only its own check-ins), a check-in at another."""


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


def _width(ch: str, encoding: str) -> int:
    """Columns on paper: a Chinese printer prints every double-byte character full width."""
    try:
        n = len(ch.encode(encoding))
    except (UnicodeEncodeError, LookupError):
        return 1
    return 2 if n == 2 else 1


_TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z:.\-/]*|\s+|.", re.S)


def fit_lines(text: str, columns: int, encoding: str = "gb18030") -> list[str]:
    """Wrap `text` to `columns` printed columns without ever breaking inside a number or a
    Latin word ("约50米" never becomes "约5" / "0米"); only a run longer than a whole line is
    cut. Each line comes back short enough that the printer driver wraps nothing itself."""
    lines: list[str] = []
    cur, width = "", 0
    for tok in _TOKEN.findall(text):
        w = sum(_width(c, encoding) for c in tok)
        if tok.isspace():
            if cur:
                cur, width = cur + " ", width + 1
            continue
        if width + w > columns and cur.strip():
            lines.append(cur.rstrip())
            cur, width = "", 0
        while w > columns:  # a single run longer than a line: cut it, nothing else fits
            head, hw = "", 0
            for c in tok:
                if hw + _width(c, encoding) > columns:
                    break
                head, hw = head + c, hw + _width(c, encoding)
            lines.append(head)
            tok, w = tok[len(head) :], w - hw
        cur, width = cur + tok, width + w
    if cur.strip() or not lines:
        lines.append(cur.rstrip())
    return lines


def _text(text: str, columns: int, encoding: str, **kw: Any) -> list[Text]:
    cols = columns // 2 if kw.get("double") else columns
    return [Text(line, **kw) for line in fit_lines(text, cols, encoding)]


def where_text(floor: str, room: str) -> str:
    """Floor and room, the floor said once ("门诊楼3层" + "门诊3楼 305诊室" -> the room alone)."""
    if not floor:
        return room
    if not room:
        return floor
    f, r = _floor_no(floor), _floor_no(room)
    if f is not None and f == r:
        return room
    return f"{floor} {room}"


_FLOOR = re.compile(r"(\d+)\s*(?:层|楼|F\b|/F)|(?:[Ff]loor|[Ll]evel)\s*(\d+)")


def _floor_no(text: str) -> str | None:
    m = _FLOOR.search(text)
    return (m[1] or m[2]) if m else None


def checkin_ticket(
    a: Appointment,
    place: Place,
    lang: str,
    device_id: str,
    printed_at: datetime,
    repeat: bool = False,
    *,
    hospital: str = "",
    columns: int = 32,
    encoding: str = "gb18030",
) -> Document:
    """The check-in ticket; `columns` is the printer's line (58 mm: 32, 80 mm: 48)."""
    dept = a.department if lang == "zh" or not place.department_en else place.department_en
    where = where_text(place.floor, a.room)
    c, e = columns, encoding
    blocks: list = []
    if hospital:
        blocks += _text(hospital, c, e, align="center", bold=True)
    blocks += _text(tr("ticket_title", lang), c, e, align="center", bold=not hospital)
    if repeat:
        blocks += _text(tr("ticket_reprint", lang), c, e, align="center")
    blocks += [
        Rule(),
        Text(tr("ticket_queue_no", lang), align="center"),
        Text(a.queue_no, align="center", bold=True, double=True),
        Rule(),
        *_text(f"{tr('ticket_department', lang)}: {dept}", c, e, bold=True),
    ]
    if where:
        blocks += _text(f"{tr('ticket_where', lang)}: {where}", c, e)
    if place.location:
        blocks += _text(f"{tr('ticket_route', lang)}: {place.location}", c, e)
    if a.doctor:
        blocks += _text(f"{tr('ticket_doctor', lang)}: {a.doctor}", c, e)
    blocks += _text(f"{tr('ticket_time', lang)}: {a.slot_start:%Y-%m-%d} {slot_text(a)}", c, e)
    if a.name:
        blocks += _text(f"{tr('ticket_patient', lang)}: {a.name}", c, e)
    blocks += [
        Feed(1),
        QR(appointment_qr(a.id), size=6),
        Text(a.id, align="center"),
        Rule(),
        *_text(tr("ticket_footer", lang), c, e, align="center"),
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
    *,
    hospital: str = "",
    reply_days: int = 3,
    help_desk: str = "",
    columns: int = 32,
    encoding: str = "gb18030",
) -> Document:
    """The feedback receipt; the reply promise is printed only with a callback number."""
    c, e = columns, encoding
    desk = help_desk or tr("default_help_desk", lang)
    blocks: list = []
    if hospital:
        blocks += _text(hospital, c, e, align="center", bold=True)
    blocks += [
        *_text(tr("slip_title", lang), c, e, align="center", bold=not hospital),
        Rule(),
        Text(tr("slip_tracking", lang), align="center"),
        Text(tracking_no, align="center", bold=True),
        Rule(),
        *_text(f"{tr('slip_category', lang)}: {tr('cat_' + category, lang)}", c, e),
    ]
    if department:
        blocks += _text(f"{tr('ticket_department', lang)}: {department}", c, e)
    if topics:
        blocks += _text(f"{tr('slip_topics', lang)}: {', '.join(topics)}", c, e)
    blocks += _text(tr("slip_process", lang), c, e)
    if callback:
        blocks += _text(tr("slip_callback", lang, days=reply_days), c, e)
    blocks += _text(tr("slip_ask", lang, desk=desk), c, e)
    blocks += [
        Feed(1),
        QR(tracking_no, size=5),
        Text(f"{printed_at:%Y-%m-%d %H:%M}", align="center"),
        Feed(2),
    ]
    return Document(tuple(blocks), title=f"feedback {tracking_no}")
