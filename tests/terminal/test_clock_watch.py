"""SPEC 4.1: `clock` is an alert kind; a device whose clock NTP has not synced says so."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from terminal.config import parse_config
from terminal.uplink import Uplink


def test_one_warning_per_spell_without_sync_and_an_info_when_it_ends() -> None:
    from terminal.telemetry import ClockWatch

    synced = [False]
    w = ClockWatch(started=0.0, after_s=600.0, synced=lambda: synced[0])
    assert w.check(10.0) is None and w.check(599.0) is None  # NTP gets its minutes after boot
    severity, message, details = w.check(600.0) or ("", "", {})
    assert severity == "warning" and "NTP" in message and details["synced"] is False
    assert w.check(700.0) is None and w.check(5000.0) is None  # once, not every check
    synced[0] = True
    assert w.check(5010.0) == (
        "info",
        "the system clock is NTP-synchronised again",
        {"synced": True},
    )
    assert w.check(5020.0) is None
    synced[0] = False  # a new spell counts from when sync was lost
    assert w.check(5030.0) is None and w.check(5629.0) is None
    assert (w.check(5630.0) or ("",))[0] == "warning"


def test_a_synchronised_clock_raises_nothing() -> None:
    from terminal.telemetry import ClockWatch

    w = ClockWatch(started=0.0, after_s=600.0, synced=lambda: True)
    assert all(w.check(t) is None for t in (0.0, 600.0, 86400.0))


def test_the_uplink_stores_the_clock_alert_in_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, no device ever raised `clock`: the kind existed in the contract only."""
    monkeypatch.setenv("CARETERM_CLOCK_SYNCED", "0")
    cfg = parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
        }
    )
    up = Uplink(cfg)
    try:
        up._on_tick(time.monotonic() + 3600.0)  # an hour after start, still without NTP
        up._on_tick(time.monotonic() + 7200.0)  # one alert per spell
        alerts = [e for e in up.outbox.iter_all("all") if e.type == "alert"]
        assert [e.topic for e in alerts] == ["careterm/main/pad-w03/alerts/clock"]
        data = json.loads(alerts[0].payload)["data"]
        assert (data["kind"], data["severity"], data["synced"]) == ("clock", "warning", False)
    finally:
        up.outbox.close()
