"""What devices publish, parsed strictly (SPEC 9.1): topics by terminal.topics, payloads by
terminal.payloads, and every envelope checked against the topic it came on.

Nothing here trusts a device: a topic of another shape, an envelope that names another
device or site than its topic, or a payload that is not the contract's shape is `Refused`
(the collector counts it, logs it once per device, never stores or acks it). An event whose
envelope is sound but whose `data` does not match its type's model is kept (stored, not
counted in reports): the device already holds it durably, and refusing it would stop its
acks for good.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from terminal import payloads, topics
from terminal.payloads import PayloadError

RefusalKind = Literal["topic", "mismatch", "payload"]


class Refused(ValueError):
    """A message the site will not use. `device` is the device the topic names (the topic
    itself when it names none), `kind` says which check failed."""

    def __init__(self, kind: RefusalKind, device: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind
        self.device = device


BadMessage = Refused
"""The earlier name, kept for callers that only catch."""


def clean(s: str) -> str:
    """Text any database takes: no NUL, no lone surrogates (both arrive via JSON escapes)."""
    return s.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def envelope_text(env: dict[str, Any]) -> str:
    text = json.dumps(env, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(env)  # escapes keep a lone surrogate as valid JSON text
    return text.replace("\x00", "")


INT32_MAX = 2**31 - 1
"""Largest value of an `Integer` column (PostgreSQL `integer`): `ratings.response_ms`,
`sessions.session`, `devices.session`, `telemetry.cert_days_left`."""
INT64_MAX = 2**63 - 1
"""Largest value of a `BigInteger` column (and of any SQLite integer)."""
FUTURE_TS_S = 86400.0
"""How far ahead of the collector's clock an event time may be and still count: more than
any UTC offset mistake (a clock set to local time in a UTC zone is 8 h ahead)."""
EARLIEST_YEAR = 2000
"""Event times before this year count on no day (a clock that never was set)."""
COUNTED_TYPES = ("rating", "reason", "prompt")
"""Event types whose rows reports count (central.derived), by the day of their `ts`."""
CLOCK_FIX = ": check the device's clock and time zone (careterm doctor on the device)"


def ts_fault(ts: str, now: float) -> str | None:
    """Why `ts` cannot place an event on a day of the reports, or None. A time the device
    could not yet have reached (more than a day ahead of the collector) or before
    EARLIEST_YEAR would put ratings into next year's or a long-closed report; a time no
    time zone conversion can take (year 1 at +14:00) would break any report that reads it.
    No ISO time at all has no day and is left as it is; one without an offset is taken as
    UTC here (the day of margin covers every zone)."""
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    try:
        utc = t.astimezone(UTC)
        (utc - timedelta(days=2), utc + timedelta(days=2))  # every zone's view of it exists
    except (OverflowError, ValueError):
        return f"ts {ts!r} is out of range{CLOCK_FIX}"
    if t.year < EARLIEST_YEAR:
        return f"ts {ts!r} is before {EARLIEST_YEAR}{CLOCK_FIX}"
    if utc.timestamp() > now + FUTURE_TS_S:
        return f"ts {ts!r} is more than a day ahead of the site's clock{CLOCK_FIX}"
    return None


def data_fault(etype: str, model: BaseModel | None) -> str | None:
    """A value of valid-looking data that no column of its row can hold."""
    if isinstance(model, payloads.RatingData) and (model.response_ms or 0) > INT32_MAX:
        return f"response_ms: {model.response_ms} is out of range"
    return None


def local_day_hour(ts: Any) -> tuple[str | None, int | None]:
    """Date and hour of the device's own local time (`...+08:00` stays 08:00-based)."""
    if not isinstance(ts, str):
        return None, None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None, None
    return t.date().isoformat(), t.hour


def parse_topic(topic: str, root: str = "careterm") -> topics.DeviceTopic:
    """The device topic's parts, or Refused("topic") for any other shape."""
    try:
        return topics.parse_device(topic, root)
    except topics.TopicError as e:
        raise Refused("topic", _named_device(topic, root), str(e)) from None


def _named_device(topic: str, root: str) -> str:
    """Who a malformed topic claims to be, for logging once per device."""
    rest = topic[len(root) + 1 :] if topic.startswith(root + "/") else topic
    parts = rest.split("/")
    return clean(parts[1][:64]) if len(parts) > 1 and parts[1] else clean(topic[:64])


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    id: str
    device: str
    site: str
    epoch: str | None
    seq: int | None
    type: str
    kind: str | None  # alert kind
    ts: str
    day: str | None
    hour: int | None
    clock_synced: bool
    data: dict[str, Any]
    envelope: dict[str, Any]
    topic: str
    model: BaseModel | None
    """`data` validated against its type's model; None for an unknown type or bad data."""
    data_error: str | None = None
    text: str = ""
    """The payload as received (JSON text: it parsed, so it holds no raw NUL)."""


def _lenient(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Validate the fields the contract names; fields a newer device adds are dropped."""
    known = {k: v for k, v in data.items() if k in model.model_fields}
    if model.model_config.get("extra") == "allow":
        known = data
    return model.model_validate(known)


def parse_event(
    topic: str, payload: bytes, root: str = "careterm", now: float | None = None
) -> Event:
    t = parse_topic(topic, root)
    if t.leaf not in ("events", "alerts"):
        raise Refused("topic", t.device, f"{topic}: not an event topic")
    try:
        raw = payloads.loads(payload)
        env = payloads.parse(payloads.Envelope, raw)
    except PayloadError as e:
        raise Refused("payload", t.device, f"{topic}: {e}") from None
    if env.device != t.device or env.site != t.site:
        raise Refused(
            "mismatch",
            t.device,
            f"{topic}: the envelope says device {env.device!r} at site {env.site!r}",
        )
    if t.leaf == "events" and (env.type != t.name or env.type == "alert"):
        raise Refused("mismatch", t.device, f"{topic}: the envelope's type is {env.type!r}")
    kind = None
    if t.leaf == "alerts":
        kind = env.data.get("kind")
        if env.type != "alert" or kind != t.name:
            raise Refused(
                "mismatch",
                t.device,
                f"{topic}: the envelope is type {env.type!r}, alert kind {kind!r}",
            )
    if clean(env.id) != env.id:
        raise Refused("payload", t.device, f"{topic}: the envelope id is not plain text")
    model, error = None, None
    schema = payloads.EVENT_DATA.get(env.type)
    if schema is not None:
        try:
            model = _lenient(schema, env.data)
        except ValidationError as e:
            error = payloads.describe(e)
    ts = clean(env.ts)
    if model is not None:
        error = data_fault(env.type, model)
        if error is None and env.type in COUNTED_TYPES:
            error = ts_fault(ts, time.time() if now is None else now)
        if error is not None:
            model = None  # stored as received, acked, counted in no report
    day, hour = local_day_hour(ts)
    return Event(
        env.id,
        t.device,
        t.site,
        env.epoch,
        env.seq,
        env.type,
        kind,
        ts,
        day,
        hour,
        env.clock_synced,
        env.data,
        raw,
        topic,
        model,
        error,
        payload.decode("utf-8-sig") if isinstance(payload, bytes) else envelope_text(raw),
    )


# -- status, telemetry, replies --------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    device: str
    site: str
    state: str
    reason: str | None
    session: int
    role: str | None
    version: str | None
    ts: str | None


def parse_status(topic: str, payload: bytes, root: str = "careterm") -> Status:
    t = parse_topic(topic, root)
    if t.leaf != "status":
        raise Refused("topic", t.device, f"{topic}: not a status topic")
    try:
        st = payloads.parse(payloads.Status, payload)
    except PayloadError as e:
        raise Refused("payload", t.device, f"{topic}: {e}") from None
    if st.session > INT32_MAX:
        raise Refused("payload", t.device, f"{topic}: session {st.session} is out of range")
    return Status(
        t.device,
        t.site,
        st.state,
        st.reason,
        st.session,
        st.role,
        clean(st.version) if st.version else None,
        clean(st.ts) if st.ts else None,
    )


@dataclass(frozen=True)
class Telemetry:
    device: str
    site: str
    body: payloads.Telemetry
    raw: dict[str, Any]


def parse_telemetry(topic: str, payload: bytes, root: str = "careterm") -> Telemetry:
    t = parse_topic(topic, root)
    if t.leaf != "telemetry":
        raise Refused("topic", t.device, f"{topic}: not a telemetry topic")
    try:
        raw = payloads.loads(payload)
        body = payloads.parse(payloads.Telemetry, raw)
    except PayloadError as e:
        raise Refused("payload", t.device, f"{topic}: {e}") from None
    if body.outbox_depth > INT64_MAX or abs(body.cert_days_left or 0) > INT32_MAX:
        raise Refused("payload", t.device, f"{topic}: a count is out of range")
    return Telemetry(t.device, t.site, body, raw)


@dataclass(frozen=True)
class Reply:
    device: str
    site: str
    cid: str
    ok: bool
    result: dict[str, Any]


def parse_reply(topic: str, payload: bytes, root: str = "careterm") -> Reply:
    t = parse_topic(topic, root)
    if t.leaf != "reply":
        raise Refused("topic", t.device, f"{topic}: not a reply topic")
    try:
        body = payloads.loads(payload)
        if not isinstance(body, dict):
            raise PayloadError("a reply is a JSON object")
        cid, ok = body.get("cid"), body.get("ok")
        if not isinstance(cid, str) or not cid or not isinstance(ok, bool):
            raise PayloadError("a reply needs a `cid` and `ok`")
    except PayloadError as e:
        raise Refused("payload", t.device, f"{topic}: {e}") from None
    result = body.get("result") if isinstance(body.get("result"), dict) else {}
    if not ok and "error" in body:
        result = {"error": body.get("error")}
    return Reply(t.device, t.site, cid, ok, result)


Message = Event | Status | Telemetry | Reply


def parse_message(topic: str, payload: bytes, root: str = "careterm") -> Message | None:
    """Any device message the collector takes; None for an empty retained status (a cleared
    topic) and for the device's own ack and commands (not the collector's business)."""
    t = parse_topic(topic, root)
    if t.leaf in ("events", "alerts"):
        return parse_event(topic, payload, root)
    if t.leaf == "status":
        return parse_status(topic, payload, root) if payload else None
    if t.leaf == "telemetry":
        return parse_telemetry(topic, payload, root)
    if t.leaf == "reply":
        return parse_reply(topic, payload, root)
    return None


# -- what reports need from event data -------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    window: str | None
    staff: str | None
    score: int
    scale: int
    label: str | None
    reason: str | None
    reason_asked: bool
    prompt: str | None
    ticket: str | None
    misuse: bool
    response_ms: int | None


def _opt(v: str | None) -> str | None:
    return clean(v) or None if v else None


def _rating(m: BaseModel | None) -> Rating | None:
    if not isinstance(m, payloads.RatingData):
        return None
    return Rating(
        _opt(m.window),
        _opt(m.staff),
        m.score,
        m.scale,
        _opt(m.label),
        _opt(m.reason),
        m.reason_asked,
        _opt(m.prompt),
        _opt(m.ticket),
        m.misuse,
        m.response_ms,
    )


def rating_of(ev: Event) -> Rating | None:
    """The rating fields the reports need, or None when the data is not a valid rating."""
    return _rating(ev.model)


def parse_rating(data: dict[str, Any]) -> Rating | None:
    """A rating from bare `data` (tests and tools that have no envelope)."""
    try:
        return _rating(_lenient(payloads.RatingData, data))
    except ValidationError:
        return None
