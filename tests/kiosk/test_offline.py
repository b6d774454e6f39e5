"""The retained roster from a real broker is kept on disk; with the broker down a restarted kiosk
still checks patients in from it, and the event reaches the broker once it is back."""

from __future__ import annotations

import json

import pytest

from ..conftest import now_clear_of_midnight, wait_for
from .conftest import TOKEN, card, patient_roster

pytestmark = pytest.mark.broker


def test_offline_checkin_from_the_stored_roster_then_the_backlog_drains(
    kiosk_harness, broker, subscriber_factory, monkeypatch
):
    monkeypatch.setenv("CARETERM_BACKOFF_MAX_S", "1")  # reconnect quickly once the broker is back
    h = kiosk_harness()
    site = subscriber_factory(broker.port, ["careterm/main/kiosk-01/events/#"])
    roster = patient_roster(now_clear_of_midnight())
    site.publish(
        "careterm/main/roster", json.dumps(roster, ensure_ascii=False).encode(), retain=True
    )
    svc = h.start(broker_url=broker.url)
    wait_for(
        lambda: (h.data / "documents" / "roster.json").exists(),
        10,
        what="retained roster kept on disk",
    )
    h.stop()
    broker.kill()

    svc = h.start(broker_url=broker.url)  # a restart while the network is down
    wait_for(lambda: "status_network" in svc.view.status, 5, what="network status line")
    svc.card_read(card(TOKEN))
    v = h.wait_view("appointments")
    svc.choose(v.data.items[1].id)
    assert h.wait_view("done").data.ticket == "printed"
    assert h.uplink.outbox.stats().waiting == 1

    broker.start()
    site = subscriber_factory(broker.port, ["careterm/main/kiosk-01/events/#"])
    ev = wait_for(lambda: site.events("checkin"), 20, what="the offline check-in at the broker")
    assert ev[0]["data"]["appointment"] == v.data.items[1].id
    wait_for(lambda: "status_network" not in svc.view.status, 5, what="status line cleared")


def test_the_kiosk_answers_its_own_commands_and_names_only_those(
    kiosk_harness, broker, subscriber_factory
):
    """A kiosk takes `print_test` besides the link's `ping` and `resend`: a pad's command gets
    "not supported", and an unknown one the list of what this device takes, not a pad's."""
    h = kiosk_harness()
    h.start(broker_url=broker.url)
    wait_for(h.uplink.link.connected.is_set, 10, what="link connected")
    ctl = subscriber_factory(broker.port, ["careterm/main/kiosk-01/reply"])
    for name, cid in (("print_test", "t"), ("pause", "p"), ("prompt", "q"), ("reboot", "r")):
        ctl.publish(f"careterm/main/kiosk-01/cmd/{name}", json.dumps({"cid": cid}).encode())
    wait_for(lambda: len(ctl.payloads("/reply")) >= 4, 10, what="four replies")
    by = {r["cid"]: r for r in ctl.payloads("/reply")}
    assert by["t"]["ok"] is True
    assert "not supported by this device" in by["p"]["error"]
    assert "not supported by this device" in by["q"]["error"]
    assert by["r"]["error"].endswith("(this device takes ping, print_test, resend)")
