"""Smoke test of the fleet simulator: 20 pads and 2 kiosks on real uplinks, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.broker
def test_small_fleet_delivers_every_event_once(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    samples = tmp_path / "samples.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fleet_sim.py"),
            "--pads",
            "20",
            "--kiosks",
            "2",
            "--pad-period",
            "0.5",
            "--kiosk-period",
            "0.5",
            "--duration",
            "4",
            "--workers",
            "2",
            "--json",
            str(out),
            "--samples",
            str(samples),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (r,) = json.loads(out.read_text())["scenarios"]
    assert r["devices_online"] == 22
    # 22 devices at 2 events/s for 4 s: about 176 events; Poisson, so allow a wide band.
    assert 100 <= r["recorded"] <= 260
    assert r["received_unique"] == r["recorded"]
    assert r["lost"] == 0 and r["duplicated"] == 0 and r["store_errors"] == 0
    assert r["messages"] == r["recorded"]
    assert r["waiting_after_drain"] == 0
    # The collector's retained acks reached every outbox: they end up empty.
    assert r["devices_not_fully_site_acked"] == 0
    lat = json.loads(samples.read_text())["custom"]
    assert len(lat) == r["recorded"]
    assert 0 < r["latency_ms"]["p50"] < 1000
    # /proc sampling found the processes: two Python workers with their uplinks, a broker.
    assert r["rss_mb"]["simulator"] > 20 and r["rss_mb"]["broker"] > 1
    assert 0 <= r["cpu_pct"]["machine_busy_pct"] <= 100
