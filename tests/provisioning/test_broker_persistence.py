"""The site broker's persistence works as written (as root, Mosquitto runs as its own user)."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.provisioning.conftest import BASE, DEVICES, Peer, SiteBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_retained_topics_and_queued_commands_survive_a_broker_restart(site):
    ca = site.broker_dir / "ca.crt"
    roster = (site.broker_dir / "roster.crt", site.broker_dir / "roster.key")
    queue = (site.broker_dir / "queue.crt", site.broker_dir / "queue.key")
    pad = (site.identity("pad-w03") / "device.crt", site.identity("pad-w03") / "device.key")
    assert "pad-w03" in DEVICES

    broker = SiteBroker(site)
    try:
        # the pad subscribes in a persistent session, then goes away
        p = Peer(site.port, ca, *pad, "pad-w03")
        assert p.connect(clean_start=False, session_expiry=3600)
        p.subscribe(f"{BASE}/pad-w03/cmd/#")
        p.close()
        s = Peer(site.port, ca, *roster, "roster-publisher")
        assert s.connect()
        s.publish(f"{BASE}/roster", b'{"v": 1, "date": "2026-11-23"}', retain=True)
        s.close()
        q = Peer(site.port, ca, *queue, "queue-system")
        assert q.connect()
        assert not q.publish(f"{BASE}/pad-w03/cmd/prompt", b'{"cid": "while-away"}').is_failure
        q.close()
    finally:
        broker.stop()
    assert (site.broker_dir / "data" / "mosquitto.db").exists()

    broker = SiteBroker(site)
    try:
        p = Peer(site.port, ca, *pad, "pad-w03")
        assert p.connect(clean_start=False, session_expiry=3600)
        p.subscribe(f"{BASE}/roster")
        wait_for(lambda: p.received(f"{BASE}/roster"), 5, what="the retained roster")
        wait_for(
            lambda: p.received(f"{BASE}/pad-w03/cmd/prompt"),
            5,
            what="the command queued while the pad was away",
        )
        p.close()
    finally:
        broker.stop()
