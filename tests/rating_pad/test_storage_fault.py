"""A full disk: the pad shows a fault instead of "thank you", keeps running, and catches up."""

from __future__ import annotations

from pathlib import Path

import pytest

from rating_pad.machine import PadState
from rating_pad.service import PadService
from terminal.config import load_config
from terminal.outbox import Faults, StorageError
from terminal.uplink import Uplink
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


def test_storage_error_shows_fault_not_thanks_and_retries(
    broker, config_writer, subscriber_factory, monkeypatch
) -> None:
    import rating_pad.service as service_mod

    monkeypatch.setattr(service_mod, "RETRY_S", 0.3)
    path: Path = config_writer(
        broker_url=broker.url, extra='[rating]\nmode = "free"\ncooldown_s = 0\n'
    )
    cfg = load_config(path)
    faults = Faults()  # the outbox's seam: the disk refuses writes exactly when told
    uplink = Uplink(cfg, faults=faults)
    sub = subscriber_factory(broker.port, ["careterm/main/pad-w03/#"])
    views = []
    svc = PadService(cfg, uplink)
    svc.on_view(views.append)
    uplink.start()
    svc.start()
    try:
        faults.fail("store", "full")  # the disk is full from now on
        with pytest.raises(StorageError):
            uplink.record("staff", {"window": "W03", "action": "pause", "staff": "x"})
        svc.touch(4)
        wait_for(lambda: views and views[-1].fault == "storage", 5, what="fault view")
        assert svc.machine.state == PadState.THANKS  # the machine moved on ...
        assert not svc.storage_ok  # ... but the screen shows the fault
        assert svc.is_alive()
        faults.clear()  # the disk has room again
        wait_for(lambda: svc.storage_ok, 5, what="the rating stored on retry")
        assert svc.last_view is not None and svc.last_view.fault is None
        ratings = wait_for(lambda: sub.events("rating"), 10, what="rating published")
        assert [e["data"]["score"] for e in ratings] == [4]
        assert any(e["data"]["kind"] == "storage" for e in sub.events("alert"))
    finally:
        svc.stop()
        uplink.stop()
