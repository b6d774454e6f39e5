"""The event envelope of SPEC 4.1 and UUIDv7 ids."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, get_args

from terminal.clock import clock_synced, now_iso
from terminal.payloads import EVENT_DATA, AlertKind

ENVELOPE_VERSION = 1
EVENT_TYPES = tuple(EVENT_DATA)
ALERT_KINDS = get_args(AlertKind)
SEVERITIES = ("info", "warning", "critical")


def uuid7(ms: int | None = None) -> str:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit Unix milliseconds, then 74 random bits."""
    ms = int(time.time() * 1000) if ms is None else ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def build_envelope(
    *,
    event_id: str,
    seq: int | None,
    epoch: str | None = None,
    device: str,
    site: str,
    etype: str,
    data: dict[str, Any],
    ts: float | None = None,
    synced: bool | None = None,
) -> dict[str, Any]:
    """SPEC 4.1 and 9.2. `epoch` is left out only of the non-durable storage alert (seq null)
    when no outbox could be opened at all; `synced` defaults to the kernel's NTP state."""
    env: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "id": event_id,
        "seq": seq,
        "epoch": epoch,
        "device": device,
        "site": site,
        "type": etype,
        "ts": now_iso(ts),
        "clock_synced": clock_synced() if synced is None else synced,
        "data": data,
    }
    if epoch is None:
        del env["epoch"]
    return env


def alert_data(kind: str, severity: str, message: str, **details: Any) -> dict[str, Any]:
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return {"kind": kind, "severity": severity, "message": message, **details}


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, Chinese kept as characters."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
