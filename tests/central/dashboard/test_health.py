"""The collector keeps device health for the console: latest telemetry, and since when a device
is online or offline (a Last Will's own `ts` is its connect time, so the collector's clock)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from central.db import device_health, open_db
from central.messages import BadMessage, parse_telemetry
from tests.central.dashboard.test_browser import device
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker]


def health(url: str, dev: str):
    eng = open_db(url)
    with eng.connect() as c:
        row = c.execute(select(device_health).where(device_health.c.device == dev)).first()
    eng.dispose()
    return row


def test_collector_stores_telemetry_and_state_changes(
    db_url, tmp_path: Path, broker, collector_factory, subscriber_factory
) -> None:
    col = collector_factory(broker.url, db_url, "--client-id", "col-health").start()
    wait_for(lambda: "subscribed" in col.output(), 20, what="collector subscribed")
    up = device(tmp_path, broker.url, "pad-w09")
    started = time.time()
    up.start()
    row = wait_for(
        lambda: (h := health(db_url, "pad-w09")) is not None and h.telemetry_at and h,
        20,
        what="telemetry stored",
    )
    assert (row.state, row.outbox_depth, row.clock_synced in (True, False)) == ("online", 0, True)
    assert started - 1 <= row.state_since <= time.time()
    assert row.telemetry_ts and json.loads(row.extra or "{}") == {}
    # Garbage on the telemetry topic is refused (logged); the collector goes on.
    sub = subscriber_factory(broker.port, ["careterm/none"])
    sub.publish("careterm/main/pad-w09/telemetry", b"not json")
    sub.publish("careterm/main/pad-w09/telemetry", {"v": 1, "outbox_depth": "many", "printer": 7})
    up.stop(5)
    stopped = time.time()
    row = wait_for(
        lambda: (h := health(db_url, "pad-w09")) is not None and h.state == "offline" and h,
        20,
        what="offline noted",
    )
    assert stopped - 1 <= row.state_since <= time.time()
    assert "ignored a message on careterm/main/pad-w09/telemetry" in col.output()
    assert col.proc is not None and col.proc.poll() is None


def test_telemetry_parsing_keeps_known_fields_and_bounds_the_rest() -> None:
    body = {
        "v": 1,
        "ts": "2026-11-23T09:41:12.345+08:00",
        "uptime_s": 12.5,
        "outbox_depth": 10**12,
        "oldest_pending_s": 3.0,
        "printer": {"state": "error", "detail": "paper out"},
        "card_reader": "ok",
        "buttons": None,
        "clock_synced": False,
        "cert_days_left": 300,
        "pad_state": "idle",
    }
    t = parse_telemetry("careterm/main/kiosk-01/telemetry", json.dumps(body).encode())
    assert (t.device, t.site, t.printer, t.card_reader, t.buttons) == (
        "kiosk-01",
        "main",
        "error",
        "ok",
        None,
    )
    assert t.outbox_depth == 2**31 - 1 and t.clock_synced is False
    assert json.loads(t.extra) == {
        "pad_state": "idle",
        "cert_days_left": 300,
        "detail": {"printer": "paper out"},
    }
    big = parse_telemetry(
        "careterm/main/kiosk-01/telemetry", json.dumps(body | {"big": "x" * 5000}).encode()
    )
    assert json.loads(big.extra) == {"detail": {"printer": "paper out"}}  # valid JSON, bounded
    for bad in (b"[1]", b"{}", b"not json", json.dumps(body | {"outbox_depth": "many"}).encode()):
        with pytest.raises(BadMessage):
            parse_telemetry("careterm/main/kiosk-01/telemetry", bad)
    with pytest.raises(BadMessage):
        parse_telemetry("careterm/main/kiosk-01/status", json.dumps(body).encode())
