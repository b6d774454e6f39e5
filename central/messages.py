"""Parsing what devices publish (envelopes, status, replies) without trusting any of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from terminal import payloads

MAX_ID_LEN = 64


class BadMessage(ValueError):
    """A payload or topic the site cannot use; the message says why."""


@dataclass(frozen=True)
class Topic:
    root: str
    site: str
    device: str
    kind: str  # "events" | "alerts" | "status" | "reply" | ...
    leaf: str  # event type or alert kind ("" for status/reply)


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) >= 5 and parts[-2] in ("events", "alerts"):
        return Topic("/".join(parts[:-4]), parts[-4], parts[-3], parts[-2], parts[-1])
    if len(parts) >= 4 and parts[-1] in ("status", "reply", "telemetry", "ack"):
        return Topic("/".join(parts[:-3]), parts[-3], parts[-2], parts[-1], "")
    raise BadMessage(f"unexpected topic {topic!r}")


@dataclass(frozen=True)
class Event:
    id: str
    device: str
    site: str
    seq: int | None
    type: str
    kind: str | None
    ts: str | None
    day: str | None
    hour: int | None
    clock_synced: bool | None
    data: dict[str, Any]
    envelope: dict[str, Any]
    topic: str


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


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("payload is not JSON") from None
    if not isinstance(obj, dict):
        raise BadMessage("payload is not a JSON object")
    return obj


def local_day_hour(ts: Any) -> tuple[str | None, int | None]:
    """Date and hour of the device's own local time (`...+08:00` stays 08:00-based)."""
    if not isinstance(ts, str):
        return None, None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None, None
    return t.date().isoformat(), t.hour


def parse_event(topic: str, payload: bytes) -> Event:
    t = parse_topic(topic)
    if t.kind not in ("events", "alerts"):
        raise BadMessage(f"{topic}: not an event topic")
    env = _json_object(payload)
    eid = env.get("id")
    if not isinstance(eid, str) or not eid or len(eid) > MAX_ID_LEN or clean(eid) != eid:
        raise BadMessage("envelope without a usable `id`")
    seq = env.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
        raise BadMessage(f"envelope {eid}: `seq` {seq!r} is not a positive integer or null")
    data = env.get("data")
    if not isinstance(data, dict):
        raise BadMessage(f"envelope {eid}: `data` is not an object")
    etype = env.get("type")
    if not isinstance(etype, str) or not etype or len(etype) > 16 or clean(etype) != etype:
        raise BadMessage(f"envelope {eid}: missing `type`")
    kind = None
    if t.kind == "alerts":
        kind = data.get("kind") if isinstance(data.get("kind"), str) else t.leaf
        kind = clean(kind[:32])
    ts = clean(env["ts"][:40]) if isinstance(env.get("ts"), str) else None
    day, hour = local_day_hour(ts)
    synced = env.get("clock_synced")
    return Event(
        eid,
        t.device,
        t.site,
        seq,
        etype,
        kind,
        ts[:40] if ts else None,
        day,
        hour,
        synced if isinstance(synced, bool) else None,
        data,
        env,
        topic,
    )


@dataclass(frozen=True)
class Rating:
    window: str | None
    staff: str | None
    score: int
    scale: int
    label: str | None
    reason: str | None
    misuse: bool
    response_ms: int | None


def _opt_str(v: Any, n: int) -> str | None:
    return clean(v[:n]) or None if isinstance(v, str) and v else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_rating(data: dict[str, Any]) -> Rating | None:
    """The rating fields the reports need, or None when the score is unusable."""
    score, scale = _int(data.get("score")), _int(data.get("scale"))
    if score is None or scale is None or not (3 <= scale <= 5) or not (1 <= score <= scale):
        return None
    resp = _int(data.get("response_ms"))
    return Rating(
        _opt_str(data.get("window"), 64),
        _opt_str(data.get("staff"), 64),
        score,
        scale,
        _opt_str(data.get("label"), 64),
        _opt_str(data.get("reason"), 200),
        data.get("misuse") is True,
        resp if resp is not None and resp >= 0 else None,
    )


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


def parse_status(topic: str, payload: bytes) -> Status:
    t = parse_topic(topic)
    body = _json_object(payload)
    state = body.get("state")
    if state not in ("online", "offline"):
        raise BadMessage(f"status state {state!r} is not online/offline")
    session = _int(body.get("session"))
    if session is None or session < 0:
        raise BadMessage("status without an integer `session`")
    return Status(
        t.device,
        t.site,
        state,
        _opt_str(body.get("reason"), 16),
        session,
        _opt_str(body.get("role"), 32),
        _opt_str(body.get("version"), 32),
        _opt_str(body.get("ts"), 40),
    )


@dataclass(frozen=True)
class Reply:
    device: str
    site: str
    cid: str
    ok: bool
    result: dict[str, Any]


def parse_reply(topic: str, payload: bytes) -> Reply:
    t = parse_topic(topic)
    body = _json_object(payload)
    cid = body.get("cid")
    if not isinstance(cid, str):
        raise BadMessage("reply without a cid")
    result = body.get("result") if isinstance(body.get("result"), dict) else {}
    return Reply(t.device, t.site, cid, body.get("ok") is True, result)


# Telemetry (SPEC 4) for the site console's device health (central/health.py).
TELEMETRY_EXTRA_MAX = 2000  # characters of the other telemetry keys kept (JSON)


@dataclass(frozen=True)
class Telemetry:
    device: str
    site: str
    ts: str | None
    uptime_s: float | None
    outbox_depth: int | None
    oldest_pending_s: float | None
    printer: str | None  # a driver state: ok, absent, error, unknown, disabled, ...
    card_reader: str | None
    buttons: str | None
    clock_synced: bool | None
    extra: str | None  # JSON: other keys (cert_days_left, pad_state, ...) and `detail` per part


def _part_state(v: Any) -> tuple[str | None, str | None]:
    """A part's state as sent: `"ok"`, or `{"state": "error", "detail": "paper out"}`."""
    if isinstance(v, str):
        return _opt_str(v, 32), None
    if isinstance(v, dict) and isinstance(v.get("state"), str):
        return _opt_str(v["state"], 32), _opt_str(v.get("detail"), 200)
    return None, None


def parse_telemetry(topic: str, payload: bytes) -> Telemetry:
    t = parse_topic(topic)
    if t.kind != "telemetry":
        raise BadMessage(f"{topic}: not a telemetry topic")
    try:
        m = payloads.parse(payloads.Telemetry, payload)
    except payloads.PayloadError as e:
        raise BadMessage(f"telemetry: {e}") from None
    raw = _json_object(payload)
    extra = {k: v for k, v in raw.items() if k not in payloads.Telemetry.model_fields}
    if m.cert_days_left is not None:
        extra["cert_days_left"] = m.cert_days_left
    parts = {}
    detail = {}
    for name in ("printer", "card_reader", "buttons"):
        parts[name], why = _part_state(getattr(m, name))
        if why:
            detail[name] = why
    if detail:
        extra["detail"] = detail
    text = clean(json.dumps(extra, ensure_ascii=False)) if extra else None
    if text is not None and len(text) > TELEMETRY_EXTRA_MAX:
        text = json.dumps({"detail": detail} if detail else {}, ensure_ascii=False)
    return Telemetry(
        t.device,
        t.site,
        clean(m.ts),
        m.uptime_s,
        min(m.outbox_depth, 2**31 - 1),
        m.oldest_pending_s,
        parts["printer"],
        parts["card_reader"],
        parts["buttons"],
        m.clock_synced,
        text,
    )
