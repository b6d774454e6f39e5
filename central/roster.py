"""`site roster build`: the HIS appointment export (CSV) -> the day's roster JSON (SPEC 6.5)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from terminal import resident_id
from terminal.cliutil import UsageError
from terminal.privacy import SaltError, card_token, load_salt

REQUIRED = (
    "appointment_id",
    "patient_name",
    "department_id",
    "department",
    "doctor",
    "room",
    "slot_start",
    "slot_end",
    "queue_no",
)
OPTIONAL = ("id_number", "card_number", "card_kind")
CARD_KINDS = ("medical_card", "id_card")
MAX_ERRORS_SHOWN = 20

APPOINTMENT_RE = re.compile(r"^[A-Za-z0-9-]{4,40}$")  # what an appointment QR may carry
ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
MEDICAL_RE = re.compile(r"^[0-9]{8,19}$")
DEPT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


class RosterInputError(UsageError):
    """The CSV has problems; `problems` lists every one as `file: row N, column C: what`."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_ERRORS_SHOWN]
        more = len(problems) - len(shown)
        body = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        super().__init__(f"{body}\n{path}: {len(problems)} problem(s); no roster written")


def mask_roster_name(name: str) -> str:
    """First and last character kept (张*三, 欧阳**锋); two-character names keep the first (李*)."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def parse_offset(v: str) -> timezone:
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", v.strip())
    if not m:
        raise UsageError(f"--utc-offset {v!r}: use +08:00")
    delta = timedelta(hours=int(m[2]), minutes=int(m[3]))
    return timezone(delta if m[1] == "+" else -delta)


def parse_slot(v: str, day: date, tz: timezone) -> datetime:
    """`2026-11-23T09:00:00+08:00`, `2026-11-23 09:00[:00]` or `09:00` (on the roster's day)."""
    v = v.strip()
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", v):
        t = time.fromisoformat(v.zfill(5) if len(v) == 4 else v)
        return datetime.combine(day, t, tz)
    dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def read_csv_text(path: str, encoding: str = "") -> str:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    for enc in [encoding] if encoding else ["utf-8-sig", "gb18030"]:
        try:
            return raw.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    raise UsageError(f"{path}: not {encoding or 'UTF-8 or GB18030'} text (use --encoding)")


@dataclass
class _Appointment:
    fields: dict[str, str]
    row: int
    tokens: list[str]


def build_roster(
    text: str,
    path: str,
    salt: bytes,
    day: date,
    tz: timezone,
    now: datetime | None = None,
    allow_empty: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """The roster and notes for the operator (skipped rows). Raises RosterInputError."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    problems: list[str] = []
    notes: list[str] = []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RosterInputError(
            path,
            [
                f"{path}: row 1: missing column(s) {', '.join(missing)} "
                f"(the header must name {', '.join(REQUIRED)})"
            ],
        )
    if "id_number" not in header and "card_number" not in header:
        raise RosterInputError(path, [f"{path}: row 1: needs an id_number or a card_number column"])
    appts: dict[str, _Appointment] = {}
    skipped = 0
    for rowno, raw in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        bad = len(problems)

        def err(col: str, what: str, rowno: int = rowno) -> None:
            problems.append(f"{path}: row {rowno}, column {col}: {what}")

        for col in REQUIRED:
            if not row.get(col):
                err(col, "empty")
        aid = row.get("appointment_id", "")
        if aid and not APPOINTMENT_RE.fullmatch(aid):
            err("appointment_id", f"{aid!r} must be 4-40 letters, digits or '-'")
        if row.get("department_id") and not DEPT_RE.fullmatch(row["department_id"]):
            err("department_id", f"{row['department_id']!r} must be letters, digits, '-' or '_'")
        if len(row.get("queue_no", "")) > 16:
            err("queue_no", "longer than 16 characters")
        slots: dict[str, datetime] = {}
        for col in ("slot_start", "slot_end"):
            if row.get(col):
                try:
                    slots[col] = parse_slot(row[col], day, tz)
                except ValueError:
                    err(col, f"{row[col]!r} is not a time (use 09:00 or 2026-11-23T09:00:00+08:00)")
        if len(slots) == 2 and slots["slot_end"] <= slots["slot_start"]:
            err("slot_end", "is not after slot_start")
        tokens = []
        idn = row.get("id_number", "").upper()
        if idn:
            if not ID_RE.fullmatch(idn):
                err("id_number", "must be 17 digits and a digit or X (value not shown)")
            elif not resident_id.is_valid(idn):
                err(
                    "id_number",
                    "check character is wrong: a typo in the ID number (value not shown)",
                )
            else:
                tokens.append(card_token(salt, "id_card", idn))
        card, kind = row.get("card_number", "").upper(), row.get("card_kind", "") or "medical_card"
        if card:
            if kind not in CARD_KINDS:
                err("card_kind", f"{kind!r} must be one of {', '.join(CARD_KINDS)}")
            elif kind == "medical_card" and not MEDICAL_RE.fullmatch(card):
                err("card_number", "a medical card number is 8-19 digits (value not shown)")
            elif kind == "id_card" and not (ID_RE.fullmatch(card) and resident_id.is_valid(card)):
                err("card_number", "not a valid ID number (value not shown)")
            else:
                tokens.append(card_token(salt, kind, card))
        if not idn and not card:
            err("id_number", "no card: fill in id_number or card_number")
        if len(problems) > bad:
            continue
        if slots["slot_start"].date() != day:
            skipped += 1
            continue
        row["slot_start"] = slots["slot_start"].isoformat(timespec="seconds")
        row["slot_end"] = slots["slot_end"].isoformat(timespec="seconds")
        prev = appts.get(aid)
        if prev is None:
            appts[aid] = _Appointment(row, rowno, tokens)
            continue
        # The same appointment on several rows: one row per card the patient may bring.
        differ = [c for c in REQUIRED if prev.fields[c] != row[c]]
        if differ:
            err(
                differ[0],
                f"appointment {aid} is also on row {prev.row} with a different {differ[0]}",
            )
            continue
        prev.tokens += [t for t in tokens if t not in prev.tokens]
    if problems:
        raise RosterInputError(path, problems)
    if skipped:
        notes.append(f"{path}: {skipped} row(s) are not on {day.isoformat()} and were left out")
    if not appts and not allow_empty:
        # An empty roster published by mistake would stop every kiosk's check-in for the day.
        raise UsageError(
            f"{path}: no appointments on {day.isoformat()} ({skipped} rows on other "
            "days): check --date, or pass --allow-empty for a day without any"
        )
    out = []
    for a in sorted(
        appts.values(), key=lambda a: (a.fields["slot_start"], a.fields["appointment_id"])
    ):
        f = a.fields
        for tok in a.tokens:
            out.append(
                {
                    "id": f["appointment_id"],
                    "token": tok,
                    "name": mask_roster_name(f["patient_name"]),
                    "department_id": f["department_id"],
                    "department": f["department"],
                    "doctor": f["doctor"],
                    "room": f["room"],
                    "slot_start": f["slot_start"],
                    "slot_end": f["slot_end"],
                    "queue_no": f["queue_no"],
                }
            )
    generated = (now or datetime.now(tz)).astimezone(tz).isoformat(timespec="seconds")
    notes.append(
        f"{path}: {len(appts)} appointments, {len(out)} roster entries "
        f"(one per card) for {day.isoformat()}"
    )
    return {"v": 1, "date": day.isoformat(), "generated": generated, "appointments": out}, notes


def build_roster_file(
    csv_path: str,
    salt_file: str,
    day: str,
    *,
    utc_offset: str = "+08:00",
    encoding: str = "",
    allow_empty: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise UsageError(f"--date {day!r}: use a date like 2026-11-23") from None
    tz = parse_offset(utc_offset)
    try:
        salt = load_salt(salt_file)
    except SaltError as e:
        raise UsageError(str(e).replace("[privacy].salt_file", "--salt-file")) from None
    return build_roster(
        read_csv_text(csv_path, encoding), csv_path, salt, d, tz, allow_empty=allow_empty
    )
