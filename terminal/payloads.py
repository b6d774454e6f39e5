"""Pydantic models of every MQTT payload of the contract (SPEC 4, 6.5, 9), validated in one place.

Devices validate what they receive (commands, acks, the site's retained documents) and site
tools validate what devices send, with these models; the JSON Schemas integrators get in
docs/reference/ are generated from them. `parse(model, payload)` turns any bad input (not
UTF-8, not JSON, nested too deep, the wrong shape) into one `PayloadError` whose message
names the fault in a line.

Incoming documents may carry fields a newer site adds (they are ignored); the fields the
contract names are strictly typed: a string is never taken for a number.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from operator import attrgetter
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from terminal.topics import LEAF_RE, NAME_RE

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
"""Largest payload parsed at all (a roster of ~50,000 appointments fits)."""
MAX_DEPTH = 32
"""Deepest JSON nesting accepted; the contract's payloads are at most 4 levels deep."""

Name = Annotated[StrictStr, Field(pattern=NAME_RE.pattern)]
Leaf = Annotated[StrictStr, Field(pattern=LEAF_RE.pattern)]
Text = Annotated[StrictStr, Field(max_length=200)]
ShortText = Annotated[StrictStr, Field(max_length=64)]
Token = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
"""SPEC 6.4: the first 32 lower-case hex characters of the HMAC."""
Cid = Annotated[StrictStr, Field(min_length=1, max_length=128)]
MAX_READ_CID = 512
"""Longest `cid` read from a command that is not valid, so that its sender still gets the one
`ok: false` reply (SPEC 9.4) saying what is wrong; a valid command's `cid` is 1 to 128
characters (`Cid`)."""
ReplyCid = Annotated[StrictStr, Field(min_length=1, max_length=MAX_READ_CID)]
Seq = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
Epoch = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{16,64}$")]
"""An outbox epoch (SPEC 9.2): random lower-case hex made when the outbox is created."""
IsoTime = Annotated[StrictStr, Field(min_length=10, max_length=40)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]

T = TypeVar("T", bound=BaseModel)


class PayloadError(ValueError):
    """A payload that cannot be used; the message is one line saying why."""


class _In(BaseModel):
    """Something received: extra fields of a newer sender are ignored.

    Every model here builds its validator when first used (`defer_build`), not at import: the
    few a kiosk or pad needs, when it needs them, instead of all ~40 before its first frame (a
    Pi-class CPU budget, BENCHMARKS.md)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class _Out(BaseModel):
    """Something this project sends: exactly the named fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


# -- JSON, safely ----------------------------------------------------------------------------


def _depth(obj: Any) -> int:
    """Nesting depth without recursion (a hostile payload must not exhaust the stack): level by
    level, so that a 20,000-entry roster costs ~15 ms rather than ~80 (one tuple per value)."""
    level, depth = [obj], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return depth
        below: list[Any] = []
        for o in level:
            if isinstance(o, dict):
                below.extend(o.values())
            elif isinstance(o, list):
                below.extend(o)
        level = below
    return depth


def loads(payload: bytes | str) -> Any:
    """JSON from a payload, or PayloadError (never RecursionError or UnicodeDecodeError)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8-sig") if isinstance(payload, bytes) else payload
        obj = json.loads(text)
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8") from None
    except RecursionError:
        raise PayloadError(f"payload is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise PayloadError(f"payload is not JSON ({e.args[0].split(':')[0]})") from None
    # Nesting needs an opening bracket per level: with few of them, no walk is needed (the
    # site collector parses thousands of envelopes a second, each with two or three).
    brackets = text.count("{") + text.count("[")
    if brackets > MAX_DEPTH and _depth(obj) > MAX_DEPTH:
        raise PayloadError(f"payload is nested deeper than {MAX_DEPTH} levels")
    return obj


def describe(e: ValidationError, limit: int = 3) -> str:
    """A one-line summary of a validation error: where and what, for logs and alerts."""
    parts = []
    for err in e.errors()[:limit]:
        where = ".".join(str(x) for x in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    more = len(e.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse(model: type[T], payload: bytes | str | Any) -> T:
    """Validate `payload` (bytes or text of JSON, or an already decoded object) as `model`."""
    obj = loads(payload) if isinstance(payload, bytes | str) else payload
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise PayloadError(describe(e)) from None


def read_cid(payload: bytes) -> str | None:
    """The command's `cid` when one can be read at all, so that even a malformed command
    gets its one `ok:false` reply (SPEC 9.4). A payload that does not parse (not JSON, not
    UTF-8, bytes after the object, nested too deep, too large) is searched for a `"cid":"..."`
    member in its first 4 KiB. A cid that is not a string of 1..MAX_READ_CID characters is
    not read: the reply must carry the command's cid as it was sent. One over 128 characters
    is read, and the command is refused for it, with that cid (SPEC 9.4)."""
    if len(payload) <= MAX_PAYLOAD_BYTES:
        try:
            obj = json.loads(payload.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            pass
        else:
            cid = obj.get("cid") if isinstance(obj, dict) else None
            return cid if _is_cid(cid) else None
    m = _CID_RE.search(payload[:CID_SEARCH_BYTES])
    if m is None:
        return None
    try:
        cid = m.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return cid if _is_cid(cid) else None


def _is_cid(cid: object) -> bool:
    return isinstance(cid, str) and 0 < len(cid) <= MAX_READ_CID


CID_SEARCH_BYTES = 4096
_CID_RE = re.compile(rb'"cid"\s*:\s*"([^"\\\x00-\x1f]{1,512})"')
"""A `"cid":"..."` member without escapes, in a payload that does not parse."""


# -- device -> site --------------------------------------------------------------------------


class Envelope(_In):
    """SPEC 4.1 and 9.2: every event and alert."""

    v: Literal[1] = 1
    """Envelope version; 1."""
    id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    """UUIDv7; unique forever; consumers drop repeats by id."""
    seq: Seq | None
    """Grows by exactly 1 per event within an epoch; null only for the non-durable storage
    alert a device publishes while its disk refuses writes."""
    epoch: Epoch | None = None
    """The outbox epoch (SPEC 9.2); absent only from version 1 devices."""
    device: Name
    """The device id; equals the topic's device segment."""
    site: Name
    """The site id; equals the topic's site segment."""
    type: Leaf
    """The event type; equals the topic's last segment (`alert` on `alerts/<kind>`)."""
    ts: IsoTime
    """The device's local time with its UTC offset."""
    clock_synced: StrictBool
    """False while the device's clock is not NTP-synchronised: `ts` may be off."""
    data: dict[str, Any]
    """The event's content; its schema depends on `type` (event-data/<type>.schema.json)."""


class Status(_In):
    """`R/S/D/status`, retained; also the Last Will."""

    v: Literal[1] = 1
    state: Literal["online", "offline"]
    """`online` while connected; `offline` after a clean stop or as the Last Will."""
    reason: Literal["shutdown", "lost"] | None = None
    """With `offline`: `shutdown` (a clean stop) or `lost` (the Last Will)."""
    role: Literal["rating_pad", "kiosk"] | None = None
    """`rating_pad` or `kiosk`."""
    version: ShortText | None = None
    """careterm version the device runs."""
    session: NonNegInt
    """Grows by 1 on every connect; the Will carries the same number."""
    ts: IsoTime | None = None
    """Device time of the change, with its UTC offset."""


class DeviceState(_In):
    """One device's health in telemetry: ok, fault or unknown, with a short reason."""

    state: ShortText
    detail: Text | None = None


class Telemetry(_In):
    """`R/S/D/telemetry`, QoS 0, every 60 s."""

    v: Literal[1] = 1
    ts: IsoTime
    """Device time of the sample, with its UTC offset."""
    uptime_s: Annotated[float, Field(ge=0)]
    """Seconds since the service started."""
    outbox_depth: NonNegInt
    """Events stored and not yet acknowledged by the broker."""
    oldest_pending_s: Annotated[float, Field(ge=0)] | None = None
    """Age in seconds of the oldest event waiting for the broker; null: none waits."""
    printer: Any = None
    """Ticket printer state (kiosk); null where there is none."""
    card_reader: Any = None
    """Card reader state; null where there is none."""
    buttons: Any = None
    """Keypad state (pad); `touch` for a touchscreen pad."""
    clock_synced: StrictBool
    """Whether the system clock is NTP-synchronised."""
    cert_days_left: StrictInt | None = None
    """Days until the device certificate expires; null without TLS."""
    epoch: ShortText | None = None
    """The device's outbox epoch (SPEC 9.2), as in its events."""
    pad_state: ShortText | None = None
    """Rating pad: `closed`, `idle`, `prompted`, `reason`, `thanks` or `paused`."""
    screen: ShortText | None = None
    """Kiosk: the screen on show."""


class Reply(_Out):
    """`R/S/D/reply`: exactly one per command whose `cid` could be read."""

    cid: ReplyCid
    """The command's `cid`, as sent (a command whose `cid` is over 128 characters is refused
    with `ok: false`)."""
    ok: StrictBool
    """Whether the command was carried out."""
    result: dict[str, Any] | None = None
    """With `ok: true`: what the command returned (`prompt` returns the prompt's id)."""
    error: Text | None = None
    """With `ok: false`: why, in a line."""

    @model_validator(mode="after")
    def _one_of(self) -> Reply:
        if self.ok and self.error is not None:
            raise ValueError("a successful reply carries `result`, not `error`")
        if not self.ok and not self.error:
            raise ValueError("a failed reply carries an `error`")
        return self


# -- event data (the envelope's `data`, by type) ---------------------------------------------

Score = Annotated[StrictInt, Field(ge=1, le=5)]


class RatingData(_Out):
    window: ShortText
    """The window id (`[window] id`)."""
    staff: ShortText | None
    """Staff number of the clerk signed in; null when none is."""
    score: Score
    """1 (worst) to `scale` (best)."""
    scale: Annotated[StrictInt, Field(ge=3, le=5)]
    """Number of keys, 3 to 5."""
    label: ShortText
    """The label of `score` (`[rating] labels`)."""
    reason: Text | None = None
    """Version 1 only; version 2 sends the reason in its own `reason` event."""
    reason_asked: StrictBool = False
    """True when the pad asks for a reason after this rating (a `reason` event follows)."""
    prompt: ShortText | None
    """The prompt this rating answers; null when no prompt was open."""
    ticket: ShortText | None = None
    """The queue number `cmd/prompt` carried."""
    misuse: StrictBool
    """Never counted in satisfaction: no open prompt, too fast, or a second press."""
    response_ms: NonNegInt | None
    """Milliseconds from the prompt to the press; null without a prompt."""

    @model_validator(mode="after")
    def _score_in_scale(self) -> RatingData:
        if self.score > self.scale:
            raise ValueError(f"score {self.score} is above the scale of {self.scale}")
        return self


class ReasonData(_Out):
    rating: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    """The id of the rating event this reason belongs to."""
    window: ShortText
    """The window id."""
    staff: ShortText | None
    """Staff number of the clerk signed in; null when none is."""
    reason: Text | None
    """Null: the patient did not answer in time, or skipped."""


class PromptData(_Out):
    """A prompt that closed without a rating (SPEC 9.3)."""

    prompt: ShortText
    """The prompt's id (as in the reply to `cmd/prompt`)."""
    ticket: ShortText | None
    """The queue number the prompt carried."""
    window: ShortText
    """The window id."""
    staff: ShortText | None
    """Staff number of the clerk signed in; null when none is."""
    outcome: Literal["expired", "superseded"]
    """`expired`: no press within `prompt_window_s`; `superseded`: a new prompt replaced it."""


class StaffData(_Out):
    window: ShortText
    """The window id."""
    action: Literal["sign_in", "sign_out", "pause", "resume"]
    """What happened at the window."""
    staff: ShortText | None
    """Staff number of the clerk concerned; null when none is signed in."""


CardKind = Literal[
    "id_card", "medical_card", "appointment_qr", "staff_card", "appointment", "phone_birth"
]


class CheckinData(_Out):
    appointment: ShortText
    """The appointment id (roster `id`)."""
    department_id: ShortText
    """The appointment's department."""
    queue_no: ShortText
    """The queue number on the ticket."""
    card_kind: CardKind
    """How the patient identified: a card kind, or `appointment` / `phone_birth` (manual lookup)."""
    token: Token | None
    """The card token (SPEC 6.4) of the card read; for a manual lookup its lookup token (kind
    `appointment` or `phone_birth`); for an appointment QR the roster's card token of that
    appointment; null when there is none (a QR of an appointment without a card token, a typed
    roster number on a kiosk without the site's salt)."""
    timing: Literal["early", "on_time", "late"]
    """When the check-in came relative to the slot."""
    ticket: Literal["printed", "failed", "none"]
    """`printed`, `failed` (shown on screen instead) or `none`."""
    repeat: StrictBool
    """True for a second check-in of the same appointment today (a reprint)."""


class FeedbackData(_Out):
    category: Literal["praise", "suggestion", "complaint"]
    """The kind of feedback."""
    department_id: ShortText | None
    """The department it is about; null: none chosen."""
    topics: list[ShortText]
    """Topics the patient ticked."""
    text: Annotated[StrictStr, Field(max_length=2000)]
    """What the patient wrote."""
    callback_phone: Annotated[StrictStr, Field(pattern=r"^1[0-9]{10}$")] | None
    """Only when the patient typed it in asking for a call back."""
    tracking_no: ShortText | None
    """The number printed on the patient's slip."""


class SurveyData(_Out):
    survey: ShortText
    """The survey's id (`R/S/survey`)."""
    answers: dict[ShortText, Annotated[StrictInt, Field(ge=1, le=10)]]
    """Question id -> the answer, 1 to the question's scale."""


AlertKind = Literal[
    "dissatisfied",
    "printer",
    "card_reader",
    "buttons",
    "storage",
    "outbox_backlog",
    "clock",
    "help",
    "document",
]


class AlertData(_In):
    """`data` of an alert; kind-specific details ride along as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    kind: AlertKind
    """What the alert is about; also the topic's last segment."""
    severity: Literal["info", "warning", "critical"]
    """`info`, `warning` or `critical`."""
    message: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    """One line for a person."""


EVENT_DATA: dict[str, type[BaseModel]] = {
    "rating": RatingData,
    "reason": ReasonData,
    "prompt": PromptData,
    "staff": StaffData,
    "checkin": CheckinData,
    "feedback": FeedbackData,
    "survey": SurveyData,
    "alert": AlertData,
}
"""Event type -> model of its `data`."""


# -- site -> device: acks and commands -------------------------------------------------------


class Ack(_In):
    """`R/S/D/ack`, retained: every event of `epoch` up to `seq` is stored at the site."""

    seq: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
    """Every event of `epoch` up to this `seq` is stored at the site."""
    epoch: Epoch
    """The outbox epoch the ack is for; a device ignores an ack for another."""


class Command(_In):
    """Every command carries a `cid`; the reply echoes it."""

    cid: Cid
    """Command id chosen by the sender; the reply carries it. Reusing it repeats nothing."""


class PromptCommand(Command):
    ticket: ShortText | None = None
    """The queue number being served; copied into the rating as `ticket`."""


class StaffCommand(Command):
    action: Literal["sign_in", "sign_out"]
    """`sign_in` or `sign_out`."""
    staff: ShortText | None = None
    """The clerk's staff number (required for `sign_in`)."""

    @model_validator(mode="after")
    def _staff_for_sign_in(self) -> StaffCommand:
        if self.action == "sign_in" and not self.staff:
            raise ValueError("sign_in needs `staff` (a staff number)")
        return self


class ResendCommand(Command):
    first: Seq = Field(validation_alias=AliasChoices("from", "first"), serialization_alias="from")
    """First `seq` to publish again (`from` on the wire)."""
    last: Seq = Field(validation_alias=AliasChoices("to", "last"), serialization_alias="to")
    """Last `seq` to publish again (`to` on the wire)."""
    epoch: Epoch | None = None
    """When given, only events of this epoch (the device's current one) are resent."""

    @model_validator(mode="after")
    def _range(self) -> ResendCommand:
        if self.last < self.first:
            raise ValueError("`to` must be >= `from`")
        return self


COMMANDS: dict[str, type[Command]] = {
    "ping": Command,
    "prompt": PromptCommand,
    "staff": StaffCommand,
    "pause": Command,
    "resume": Command,
    "print_test": Command,
    "resend": ResendCommand,
}
"""Command name -> model of its payload."""


# -- site -> devices: retained documents -----------------------------------------------------


SLOT_YEARS = (2000, 2099)
"""The years a slot time may fall in."""


class Appointment(_In):
    id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    """Appointment id; what its QR code carries after `CT1:`."""
    token: Token | None = None
    """Card token of the patient's ID or medical card (SPEC 6.4)."""
    lookup: list[Token] = Field(default_factory=list)
    """More tokens that find this appointment by manual lookup (SPEC 9.6): kinds
    `appointment` (the appointment number) and `phone_birth` (phone and birth date)."""
    name: Annotated[StrictStr, Field(max_length=32)] = ""
    """Masked name (张*三); never a full name."""
    department_id: ShortText
    """Department code, as in the directory."""
    department: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    """Department name shown on screen and ticket."""
    doctor: Annotated[StrictStr, Field(max_length=64)] = ""
    """Doctor's name."""
    room: Annotated[StrictStr, Field(max_length=64)] = ""
    """Where to go."""
    slot_start: IsoTime
    """Start of the slot, ISO 8601 with offset."""
    slot_end: IsoTime
    """End of the slot, ISO 8601 with offset."""
    queue_no: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    """Queue number printed on the ticket."""

    @field_validator("slot_start", "slot_end")
    @classmethod
    def _iso_time(cls, v: str) -> str:
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            # (the value is not quoted: a HIS export whose columns slipped puts an ID number or
            # a name here, and the message reaches logs, alerts and the site's database)
            raise ValueError("not an ISO 8601 time (value not shown)") from None
        if not SLOT_YEARS[0] <= t.year <= SLOT_YEARS[1]:
            # 0001-01-01 is many exports' "no date": the kiosk could not compute with it (a
            # naive time is the kiosk's local time, an end before the start is the start)
            raise ValueError(f"not a time of {SLOT_YEARS[0]}-{SLOT_YEARS[1]}")
        return v


class Roster(_In):
    """`R/S/roster` (SPEC 6.5): today's appointments; never empty."""

    v: Literal[1] = 1
    date: date
    """The day the roster is for (YYYY-MM-DD)."""
    generated: IsoTime | None = None
    """When it was built, ISO 8601 with offset."""
    appointments: Annotated[list[Appointment], Field(min_length=1)]
    """One entry per appointment and card; an appointment may appear once per card."""

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError("must be a date string like 2026-11-23")
        return v

    @model_validator(mode="after")
    def _one_appointment_per_id(self) -> Roster:
        same = SameAppointment()
        for a in self.appointments:
            same.check(a)
        return self


class SameAppointment:
    """Rows that share an appointment id (one per card, SPEC 6.5) must be the same appointment:
    a HIS export that gives one id two patients, departments or queue numbers would show a
    patient someone else's appointment and make another's first check-in a reprint. Ids are
    compared as the kiosk finds them, without regard to case."""

    FIELDS = (
        "name",
        "department_id",
        "department",
        "doctor",
        "room",
        "slot_start",
        "slot_end",
        "queue_no",
    )
    """What the rows of one appointment share (all but `id`, `token` and `lookup`)."""
    _what = staticmethod(attrgetter(*FIELDS))

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, ...]] = {}

    def check(self, a: Appointment) -> None:
        """Raise ValueError when `a` has the id of an earlier, different appointment."""
        what = self._what(a)
        first = self._seen.setdefault(a.id.upper(), what)
        if first is not what and first != what:
            raise ValueError(
                f"appointment id {a.id} is given to two different appointments "
                "(one id, one appointment: only the card token may differ between its rows)"
            )


class Department(_In):
    id: ShortText
    """Department code."""
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    """Name in Chinese."""
    name_en: Annotated[StrictStr, Field(max_length=96)] = ""
    """Name in English."""
    floor: Annotated[StrictStr, Field(max_length=64)] = ""
    """Building and floor."""
    location: Annotated[StrictStr, Field(max_length=96)] = ""
    """How to find it from the lift or stairs."""


class Doctor(_In):
    name: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    """Doctor's name."""
    title: Annotated[StrictStr, Field(max_length=32)] = ""
    """Title (主任医师)."""
    department_id: ShortText
    """Department code."""
    today: list[Annotated[StrictStr, Field(max_length=32)]] = Field(default_factory=list)
    """Today's consulting hours (`08:00-12:00`)."""
    bio: Annotated[StrictStr, Field(max_length=2000)] = ""
    """Short introduction."""


class Directory(_In):
    """`R/S/directory`: departments, floors, today's doctors; at least one department."""

    v: Literal[1] = 1
    departments: Annotated[list[Department], Field(min_length=1)]
    doctors: list[Doctor] = Field(default_factory=list)


class Question(_In):
    id: ShortText
    """Question id, the key in the survey event's `answers`."""
    text: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    """The question in Chinese."""
    text_en: Annotated[StrictStr, Field(max_length=300)] = ""
    """The question in English."""
    scale: Annotated[StrictInt, Field(ge=2, le=10)] = 5
    """Number of answers, 2 to 10."""
    labels: list[ShortText] = Field(default_factory=list)
    """One label per answer, worst first (empty: the kiosk's default labels for the scale)."""
    labels_en: list[ShortText] = Field(default_factory=list)

    @model_validator(mode="after")
    def _labels_fit(self) -> Question:
        for key, labels in (("labels", self.labels), ("labels_en", self.labels_en)):
            if labels and len(labels) != self.scale:
                raise ValueError(f"{key} has {len(labels)} entries for a scale of {self.scale}")
        return self


class Survey(_In):
    """`R/S/survey`: one survey with at least one question, ids unique."""

    v: Literal[1] = 1
    id: ShortText
    """Survey id, carried in survey events."""
    questions: Annotated[list[Question], Field(min_length=1, max_length=20)]
    """1 to 20 questions, ids unique."""

    @model_validator(mode="after")
    def _unique_ids(self) -> Survey:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids repeat")
        return self


MAX_STAFF_NO = 32
"""Longest staff number, in characters."""


def staff_number(v: object) -> str | None:
    """`v` when it is a staff number (1..32 printable characters, no space at either end),
    else None: the one rule for the staff directory and the pad's `staff` command."""
    if isinstance(v, str) and 0 < len(v) <= MAX_STAFF_NO and v.isprintable() and v.strip() == v:
        return v
    return None


class StaffMember(_In):
    staff: Annotated[StrictStr, Field(min_length=1, max_length=MAX_STAFF_NO)]
    """Staff number as shown on screen (E1024): 1 to 32 printable characters, no space at
    either end (as the pad's `staff` command takes it)."""
    name: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    """Name shown on the pad."""
    title: Annotated[StrictStr, Field(max_length=32)] = ""
    """Job title shown on the pad."""
    token: Token | None = None
    """Card token of the clerk's staff card (SPEC 6.4)."""
    photo: StrictStr | None = None
    """Base64 JPEG or null."""

    @field_validator("staff")
    @classmethod
    def _staff_number(cls, v: str) -> str:
        if staff_number(v) is None:
            raise ValueError(
                f"not a staff number ({v!r}): 1..{MAX_STAFF_NO} printable characters, "
                "no space at either end"
            )
        return v


class StaffDirectory(RootModel[Annotated[list[StaffMember], Field(min_length=1)]]):
    """`R/S/staff`: the clerks a pad may show; never empty, no staff number or card token
    twice."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    @model_validator(mode="after")
    def _unique_staff(self) -> StaffDirectory:
        numbers = [m.staff for m in self.root]
        if len(set(numbers)) != len(numbers):
            raise ValueError("staff numbers repeat")
        owner: dict[str, str] = {}
        for m in self.root:
            if m.token is None:
                continue
            first = owner.setdefault(m.token, m.staff)
            if first != m.staff:
                # one card would sign in whichever clerk comes first: ratings to the wrong one
                raise ValueError(f"{first} and {m.staff} have the same card token")
        return self


DOCUMENTS: dict[str, type[BaseModel]] = {
    "roster": Roster,
    "directory": Directory,
    "survey": Survey,
    "staff": StaffDirectory,
}
"""Retained site document name -> model."""
