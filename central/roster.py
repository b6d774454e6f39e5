"""`site roster build`: the HIS appointment export (CSV) -> the day's roster JSON (SPEC 6.5, 9.6).

Columns are found by careterm's field names, by the Chinese headers HIS exports use
(`DEFAULT_HEADERS`), or by an explicit mapping (`--map field=列名`, or a TOML file of such
pairs). Times without a date are placed on `--date` only when nothing in the file or the
calendar says otherwise: a roster on the wrong day stops every check-in, so doubt is exit 2.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from terminal import resident_id
from terminal.cliutil import UsageError
from terminal.payloads import Roster, describe
from terminal.privacy import SaltError, card_token, load_salt, mask_roster_name

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
OPTIONAL = ("id_number", "card_number", "card_kind", "visit_date", "phone", "birth_date")
FIELDS = REQUIRED + OPTIONAL

# Headers understood without `--map`, besides the field's own name. A file with two of them
# for one field (科室 and 科室名称) is refused: which one is meant is the operator's call.
DEFAULT_HEADERS: dict[str, tuple[str, ...]] = {
    "appointment_id": ("预约号", "预约编号", "预约单号", "挂号单号"),
    "id_number": ("身份证号", "身份证号码"),
    "card_number": ("就诊卡号", "医保卡号", "社保卡号", "卡号"),
    "card_kind": ("卡类型", "卡类别"),
    "patient_name": ("姓名", "患者姓名", "病人姓名"),
    "department_id": ("科室代码", "科室编码", "科室编号"),
    "department": ("科室", "科室名称", "就诊科室"),
    "doctor": ("医生", "医生姓名", "出诊医生", "医师"),
    "room": ("诊室", "诊室名称", "就诊地点"),
    "visit_date": ("就诊日期", "预约日期"),
    "slot_start": ("开始时间", "预约开始时间", "就诊开始时间"),
    "slot_end": ("结束时间", "预约结束时间", "就诊结束时间"),
    "queue_no": ("排队号", "就诊序号", "候诊号", "序号"),
    "phone": ("手机号", "手机号码", "联系电话"),
    "birth_date": ("出生日期",),
}
CARD_KINDS = ("medical_card", "id_card")
CARD_KIND_WORDS = {  # what a Chinese HIS writes in 卡类型
    "医保卡": "medical_card",
    "社保卡": "medical_card",
    "就诊卡": "medical_card",
    "院内卡": "medical_card",
    "身份证": "id_card",
}
LOOKUP_KINDS = ("appointment", "phone_birth")  # SPEC 9.6 manual lookup tokens
MAX_TEXT = 64  # department, doctor, room (terminal.payloads.Appointment)
FUTURE_DAYS = 7  # a roster may be built up to a week ahead (advance booking)
MAX_ERRORS_SHOWN = 20

APPOINTMENT_RE = re.compile(r"^[A-Za-z0-9-]{4,40}$")  # what an appointment QR may carry
ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
MEDICAL_RE = re.compile(r"^[0-9]{8,19}$")
DEPT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
DATE_RES = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
SLOT_HINT = "use 09:00, 2026-11-23 09:00 or 2026-11-23T09:00:00+08:00"


class RosterInputError(UsageError):
    """The CSV has problems; `problems` lists every one as `file: row N, column C: what`."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_ERRORS_SHOWN]
        more = len(problems) - len(shown)
        body = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        super().__init__(f"{body}\n{path}: {plural(len(problems), 'problem')}; no roster written")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- values ------------------------------------------------------------------------------------


def parse_offset(v: str) -> timezone:
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", v.strip())
    if not m:
        raise UsageError(f"--utc-offset {v!r}: use +08:00")
    delta = timedelta(hours=int(m[2]), minutes=int(m[3]))
    return timezone(delta if m[1] == "+" else -delta)


def parse_date(v: str) -> date:
    """2026-11-23, 2026/11/23, 2026.11.23, 20261123 or 2026年11月23日; ValueError otherwise."""
    v = v.strip()
    for rx in DATE_RES:
        m = rx.fullmatch(v)
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
    raise ValueError(v)


def parse_time(v: str) -> time:
    m = TIME_RE.fullmatch(v.strip())
    if not m:
        raise ValueError(v)
    return time(int(m[1]), int(m[2]), int(m[3] or 0))


def parse_slot(v: str, tz: timezone) -> datetime | time:
    """A time of day (`09:00`: its date comes from elsewhere) or an aware date and time."""
    v = v.strip()
    if TIME_RE.fullmatch(v):
        return parse_time(v)
    m = re.fullmatch(r"(.+?)[ T](\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?", v)
    if not m:
        raise ValueError(v)
    d = parse_date(m[1])
    hour, rest = m[2].split(":", 1)
    t = time.fromisoformat(f"{int(hour):02d}:{rest}")
    tzinfo = tz if not m[3] else (UTC if m[3] == "Z" else parse_offset(m[3]))
    return datetime.combine(d, t, tzinfo)


def parse_phone(v: str) -> str | None:
    """An 11-digit mainland mobile number (spaces, dashes and +86 allowed), or None."""
    digits = re.sub(r"[\s-]", "", v)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if MOBILE_RE.fullmatch(digits) else None


# -- inputs ------------------------------------------------------------------------------------


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


def load_column_map(specs: list[str]) -> dict[str, str]:
    """`--map` values: `field=column` pairs, or TOML files of such pairs (later ones win)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, eq, column = spec.partition("=")
        if eq and name.strip() in FIELDS:
            pairs: dict[str, Any] = {name.strip(): column}
            where = f"--map {spec}"
        else:
            try:
                pairs = tomllib.loads(Path(spec).read_text(encoding="utf-8-sig"))
            except OSError as e:
                raise UsageError(
                    f"--map {spec}: not field=column and not a readable file ({e.strerror})"
                ) from None
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise UsageError(f'--map {spec}: not a TOML file of field = "列名" ({e})') from None
            where = f"--map {spec}"
        for k, v in pairs.items():
            if k not in FIELDS:
                raise UsageError(
                    f"{where}: {k!r} is not a roster field (fields: {', '.join(FIELDS)})"
                )
            if not isinstance(v, str) or not v.strip():
                raise UsageError(f"{where}: {k}: give the column's header as text")
            out[k] = v.strip()
    return out


def load_directory_ids(path: str) -> dict[str, str]:
    """Department name -> id from the published directory (`site publish directory`)."""
    if not path:
        return {}
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise UsageError(f"--directory {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"--directory {path}: not valid JSON ({e})") from None
    deps = doc.get("departments") if isinstance(doc, dict) else None
    if not isinstance(deps, list):
        raise UsageError(f"--directory {path}: no departments list (the directory as published)")
    out = {}
    for d in deps:
        if isinstance(d, dict) and isinstance(d.get("id"), str) and isinstance(d.get("name"), str):
            out[d["name"].strip()] = d["id"]
    return out


def resolve_columns(
    header: list[str], mapping: dict[str, str], path: str, have_directory: bool
) -> dict[str, str]:
    """Field -> header for this file; every problem with the header at once."""
    problems: list[str] = []
    cols: dict[str, str] = {}
    present = set(header)
    for f in FIELDS:
        if f in mapping:
            if mapping[f] not in present:
                problems.append(
                    f"{path}: row 1: --map {f}={mapping[f]}: no such column "
                    f"(the columns are: {', '.join(header)})"
                )
            else:
                cols[f] = mapping[f]
            continue
        found = [h for h in (f, *DEFAULT_HEADERS.get(f, ())) if h in present]
        if len(found) > 1:
            problems.append(
                f"{path}: row 1: columns {' and '.join(found)} could both be {f}: "
                f"choose one with --map {f}=<column>"
            )
        elif found:
            cols[f] = found[0]
    missing = [
        f for f in REQUIRED if f not in cols and not (f == "department_id" and have_directory)
    ]
    if missing:
        names = ", ".join(f"{f} ({'/'.join(DEFAULT_HEADERS[f][:2])})" for f in missing)
        hint = (
            "; without a department_id column, --directory directory.json looks the ids up by "
            "department name"
            if "department_id" in missing
            else ""
        )
        problems.append(
            f"{path}: row 1: missing column(s) {names}: name them in the header or map "
            f"them with --map field=<column>{hint}"
        )
    if "id_number" not in cols and "card_number" not in cols:
        problems.append(
            f"{path}: row 1: needs an id_number (身份证号) or a card_number (就诊卡号) column"
        )
    if problems:
        raise RosterInputError(path, problems)
    return cols


# -- building ----------------------------------------------------------------------------------


@dataclass
class _Appointment:
    fields: dict[str, str]
    row: int
    tokens: list[str]
    lookups: list[str] = field(default_factory=list)


@dataclass
class _Dates:
    """Which rows carry their own date and which only a time (placed on --date)."""

    dated: dict[date, list[int]] = field(default_factory=dict)
    undated: list[int] = field(default_factory=list)


def _rows_text(rows: list[int]) -> str:
    spans: list[str] = []
    start = prev = rows[0]
    for r in [*rows[1:], None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        spans.append(f"{start}" if start == prev else f"{start}-{prev}")
        if r is not None:
            start = prev = r
    return (
        ("row " if len(rows) == 1 else "rows ")
        + ", ".join(spans[:6])
        + (", ..." if len(spans) > 6 else "")
    )


def check_dates(dates: _Dates, day: date, today: date, path: str, force: bool) -> list[str]:
    """Refuse a --date that the file or the calendar contradicts (never re-date silently)."""
    problems = []
    if dates.undated and dates.dated and day not in dates.dated:
        shown = ", ".join(d.isoformat() for d in sorted(dates.dated)[:3])
        problems.append(
            f"{path}: {_rows_text(dates.undated)} give a time without a date, and the dated "
            f"rows are on {shown}, not on --date {day.isoformat()}: the times would land on "
            "the wrong day. Check --date, or give every row its date (column visit_date / 就诊日期)"
        )
    if force:
        return problems
    if dates.undated and not dates.dated and day not in (today, today + timedelta(days=1)):
        problems.append(
            f"--date {day.isoformat()}: {path} gives times without dates, so every appointment "
            f"would be put on {day.isoformat()}, which is neither today ({today.isoformat()}) "
            "nor tomorrow. Give the day the export is for, or --force-date to build it anyway"
        )
    elif day < today or day > today + timedelta(days=FUTURE_DAYS):
        problems.append(
            f"--date {day.isoformat()}: "
            + ("in the past" if day < today else f"more than {FUTURE_DAYS} days ahead")
            + f" (today is {today.isoformat()}): kiosks would never use this roster. Check "
            "--date, or --force-date to build it anyway"
        )
    return problems


def build_roster(
    text: str,
    path: str,
    salt: bytes,
    day: date,
    tz: timezone,
    now: datetime | None = None,
    allow_empty: bool = False,
    column_map: dict[str, str] | None = None,
    department_ids: dict[str, str] | None = None,
    force_date: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """The roster and notes for the operator (skipped rows). Raises RosterInputError."""
    now = (now or datetime.now(tz)).astimezone(tz)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    department_ids = department_ids or {}
    cols = resolve_columns(header, column_map or {}, path, bool(department_ids))
    index = {f: header.index(h) for f, h in cols.items()}
    problems: list[str] = []
    notes: list[str] = []
    appts: dict[str, _Appointment] = {}
    dates = _Dates()
    skipped = 0
    no_phone = 0
    for rowno, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        row = {f: (values[i].strip() if i < len(values) else "") for f, i in index.items()}
        bad = len(problems)

        # A problem names its row and column, never the cell: a row whose columns slipped puts
        # a patient's name, ID number or phone in any column, and this goes to a journal.
        def err(f: str, what: str, rowno: int = rowno) -> None:
            problems.append(f"{path}: row {rowno}, column {cols.get(f, f)}: {what}")

        if not row.get("department_id") and row.get("department") and department_ids:
            if row["department"] in department_ids:
                row["department_id"] = department_ids[row["department"]]
            else:
                err("department", "is not a department of --directory (value not shown)")
        for f in REQUIRED:
            if not row.get(f) and f in cols:
                err(f, "empty")
        aid = row.get("appointment_id", "")
        if aid and not APPOINTMENT_RE.fullmatch(aid):
            err("appointment_id", "must be 4-40 letters, digits or '-' (value not shown)")
        if row.get("department_id") and not DEPT_RE.fullmatch(row["department_id"]):
            err("department_id", "must be letters, digits, '-' or '_' (value not shown)")
        if len(row.get("queue_no", "")) > 16:
            err("queue_no", "longer than 16 characters")
        for f in ("department", "doctor", "room"):
            if len(row.get(f, "")) > MAX_TEXT:
                err(f, f"longer than {MAX_TEXT} characters (kiosks refuse it)")
        visit: date | None = None
        if row.get("visit_date"):
            try:
                visit = parse_date(row["visit_date"])
            except ValueError:
                err("visit_date", "is not a date (use 2026-11-23; value not shown)")
        slots: dict[str, datetime] = {}
        undated = False
        for f in ("slot_start", "slot_end"):
            if not row.get(f):
                continue
            try:
                v = parse_slot(row[f], tz)
            except ValueError:
                err(f, f"is not a time ({SLOT_HINT}; value not shown)")
                continue
            if isinstance(v, time):
                undated = undated or visit is None
                slots[f] = datetime.combine(visit or day, v, tz)
            else:
                if visit is not None and v.astimezone(tz).date() != visit:
                    err(f, f"is on {v.astimezone(tz).date()}, but visit_date is {visit}")
                slots[f] = v
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
        card = row.get("card_number", "").upper()
        kind_text = row.get("card_kind", "")
        kind = CARD_KIND_WORDS.get(kind_text, kind_text) or "medical_card"
        if card:
            if kind not in CARD_KINDS:
                err(
                    "card_kind",
                    f"must be one of {', '.join(CARD_KINDS)} (or 医保卡/就诊卡/身份证; value not shown)",
                )
            elif kind == "medical_card" and not MEDICAL_RE.fullmatch(card):
                err("card_number", "a medical card number is 8-19 digits (value not shown)")
            elif kind == "id_card" and not (ID_RE.fullmatch(card) and resident_id.is_valid(card)):
                err("card_number", "not a valid ID number (value not shown)")
            else:
                tokens.append(card_token(salt, kind, card))
        if not idn and not card:
            err("id_number", "no card: fill in id_number or card_number")
        lookups = []
        if aid:
            lookups.append(card_token(salt, "appointment", aid))
        birth = _birth_date(row, idn, err)
        if row.get("phone") and birth is not None:
            phone = parse_phone(row["phone"])
            if phone is None:
                no_phone += 1
            else:
                lookups.append(card_token(salt, "phone_birth", phone + birth.strftime("%Y%m%d")))
        if len(problems) > bad:
            continue
        start_day = slots["slot_start"].astimezone(tz).date()
        if undated:
            dates.undated.append(rowno)
        else:
            dates.dated.setdefault(start_day, []).append(rowno)
        if start_day != day:
            skipped += 1
            continue
        row["slot_start"] = slots["slot_start"].isoformat(timespec="seconds")
        row["slot_end"] = slots["slot_end"].isoformat(timespec="seconds")
        prev = appts.get(aid)
        if prev is None:
            appts[aid] = _Appointment(row, rowno, tokens, lookups)
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
        prev.lookups += [t for t in lookups if t not in prev.lookups]
    problems += check_dates(dates, day, now.date(), path, force_date)
    if problems:
        raise RosterInputError(path, problems)
    if skipped:
        notes.append(f"{path}: {skipped} row(s) are not on {day.isoformat()} and were left out")
    if no_phone:
        notes.append(
            f"{path}: {no_phone} row(s) have a phone that is not an 11-digit mobile number: "
            "no phone lookup for them (values not shown)"
        )
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
        for n, tok in enumerate(a.tokens):
            out.append(
                {
                    "id": f["appointment_id"],
                    "token": tok,
                    # on the first entry only: one lookup finds the appointment once
                    "lookup": a.lookups if n == 0 else [],
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
    lookups_n = sum(len(a.lookups) for a in appts.values())
    notes.append(
        f"{path}: {len(appts)} appointments, {len(out)} roster entries (one per card; "
        f"{lookups_n} manual lookup tokens) for {day.isoformat()}"
    )
    roster = {"v": 1, "date": day.isoformat(), "generated": now.isoformat(timespec="seconds")}
    roster["appointments"] = out
    if out:
        try:  # what the kiosks will check; a roster they refuse is never written
            Roster.model_validate(roster)
        except ValidationError as e:
            raise UsageError(
                f"{path}: the roster would be refused by the kiosks: {describe(e)}"
            ) from None
    return roster, notes


def _birth_date(row: dict[str, str], idn: str, err: Any) -> date | None:
    """From the birth_date column, else from a valid resident ID number (digits 7-14)."""
    if row.get("birth_date"):
        try:
            return parse_date(row["birth_date"])
        except ValueError:
            err("birth_date", "is not a date (use 1980-01-31; value not shown)")
            return None
    if idn and ID_RE.fullmatch(idn) and resident_id.is_valid(idn):
        try:
            return date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14]))
        except ValueError:
            return None
    return None


def build_roster_file(
    csv_path: str,
    salt_file: str,
    day: str,
    *,
    utc_offset: str = "+08:00",
    encoding: str = "",
    allow_empty: bool = False,
    column_map: list[str] | None = None,
    directory: str = "",
    force_date: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise UsageError(f"--date {day!r}: use a date like 2026-11-23") from None
    tz = parse_offset(utc_offset)
    mapping = load_column_map(column_map or [])
    dept_ids = load_directory_ids(directory)
    try:
        salt = load_salt(salt_file)
    except SaltError as e:
        raise UsageError(str(e).replace("[privacy].salt_file", "--salt-file")) from None
    return build_roster(
        read_csv_text(csv_path, encoding),
        csv_path,
        salt,
        d,
        tz,
        allow_empty=allow_empty,
        column_map=mapping,
        department_ids=dept_ids,
        force_date=force_date,
    )
