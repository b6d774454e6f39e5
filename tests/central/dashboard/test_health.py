"""Device health as the console reads it from what the real collector stores: telemetry, and
since when a device is online or offline (the collector's clock: a Last Will's own `ts` is
the time its device connected)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from central.dashboard.data import ConsoleData
from central.db import open_db
from tests.central.dashboard.site_data import TZ
from tests.central.dashboard.test_browser import device
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker]


def pad(url: str):
    eng = open_db(url)
    try:
        devs = {d.device: d for d in ConsoleData(eng, tz=TZ).snapshot().devices}
    finally:
        eng.dispose()
    return devs.get("pad-w09")


def test_health_from_telemetry_and_status_through_the_collector(
    db_url, tmp_path: Path, broker, collector_factory
) -> None:
    col = collector_factory(broker.url, db_url, "--client-id", "col-health").start()
    wait_for(lambda: "subscribed" in col.output(), 20, what="collector subscribed")
    up = device(tmp_path, broker.url, "pad-w09")
    started = time.time()
    up.start()
    d = wait_for(
        lambda: (p := pad(db_url)) is not None and p.telemetry_at and p, 20, what="telemetry"
    )
    assert (d.state, d.outbox_depth, d.version) == ("online", 0, "0.1.0")
    # This machine's clock may not be NTP-synchronised: then that is the only problem.
    assert d.problems == ([] if d.clock_synced else ["clock"])
    assert started - 1 <= d.since <= time.time()
    up.stop(5)
    stopped = time.time()
    d = wait_for(lambda: (p := pad(db_url)) and p.state == "offline" and p, 20, what="offline")
    assert (d.reason, d.level) == ("shutdown", "critical")
    assert stopped - 1 <= d.since <= time.time()
