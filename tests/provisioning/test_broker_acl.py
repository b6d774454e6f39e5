"""The site broker as `provision broker` writes it: mutual TLS, identity as username, %u ACL."""

from __future__ import annotations

import json
import time

import pytest

from provisioning.certs import SiteCA
from tests.conftest import wait_for
from tests.provisioning.conftest import BASE

pytestmark = pytest.mark.broker

# Nothing may arrive for a denied message; a marker sent after it on the same connection
# proves the broker has already processed (and dropped) it, so no sleep has to guess.
QUIET_S = 0.3


def test_each_device_connects_with_its_own_certificate_and_the_site_reads_its_events(peers):
    site = peers("site-service")
    site.subscribe("#")
    pad, kiosk = peers("pad-w03"), peers("kiosk-01")
    pad.publish(f"{BASE}/pad-w03/events/rating", b'{"seq": 1}')
    kiosk.publish(f"{BASE}/kiosk-01/events/checkin", b'{"seq": 1}')
    kiosk.publish(f"{BASE}/kiosk-01/status", b'{"state": "online"}', retain=True)
    wait_for(lambda: len(site.received()) >= 3, 5, what="the site to read both devices")
    topics = {t for t, _ in site.received()}
    assert {
        f"{BASE}/pad-w03/events/rating",
        f"{BASE}/kiosk-01/events/checkin",
        f"{BASE}/kiosk-01/status",
    } <= topics


def test_a_device_cannot_publish_under_another_device(peers):
    site = peers("site-service")
    site.subscribe(f"{BASE}/#")
    pad = peers("pad-w03")
    spoofed = pad.publish(f"{BASE}/kiosk-01/events/checkin", b'{"forged": true}')
    assert spoofed.is_failure  # MQTT 5 PUBACK: not authorized
    pad.publish(f"{BASE}/kiosk-01/status", b'{"state": "offline"}', retain=True)
    pad.publish(f"{BASE}/roster", b'{"forged": true}', retain=True)
    pad.publish(f"{BASE}/pad-w03/ack", b'{"seq": 999999}', retain=True)
    pad.publish(f"{BASE}/pad-w03/events/rating", b"marker")
    wait_for(lambda: site.received(f"{BASE}/pad-w03/events/rating"), 5, what="the marker")
    time.sleep(QUIET_S)
    assert site.live_topics() == [f"{BASE}/pad-w03/events/rating"]
    # nor did the retained forgeries stick for later readers
    late = peers("site-service", client_id="late-reader")
    late.subscribe(f"{BASE}/roster")
    late.subscribe(f"{BASE}/kiosk-01/status")
    late.subscribe(f"{BASE}/pad-w03/ack")
    time.sleep(QUIET_S)
    assert not any(b"forged" in p or b"999999" in p or b"offline" in p for _, p in late.received())


def test_a_client_id_naming_another_device_gives_no_rights_over_it(peers):
    """%u is the certificate's name: choosing another device's client id changes nothing."""
    site = peers("site-service")
    site.subscribe(f"{BASE}/#")
    impostor = peers("pad-w03", client_id="kiosk-01")
    assert impostor.publish(f"{BASE}/kiosk-01/events/checkin", b"forged").is_failure
    assert not impostor.publish(f"{BASE}/pad-w03/events/rating", b"marker").is_failure
    wait_for(lambda: site.received(), 5, what="the marker")
    time.sleep(QUIET_S)
    assert site.live_topics() == [f"{BASE}/pad-w03/events/rating"]


def test_a_device_reads_only_its_own_commands_and_ack(peers):
    pad, kiosk = peers("pad-w03"), peers("kiosk-01")
    pad.subscribe(f"{BASE}/kiosk-01/cmd/#")
    pad.subscribe(f"{BASE}/kiosk-01/ack")
    pad.subscribe(f"{BASE}/+/events/#")
    pad.subscribe(f"{BASE}/pad-w03/cmd/#")
    kiosk.subscribe(f"{BASE}/kiosk-01/cmd/#")
    site = peers("site-service")
    assert not site.publish(f"{BASE}/kiosk-01/cmd/ping", b'{"cid": "k1"}').is_failure
    assert not site.publish(f"{BASE}/kiosk-01/ack", b'{"seq": 5}', retain=True).is_failure
    kiosk.publish(f"{BASE}/kiosk-01/events/checkin", b"{}")
    site.publish(f"{BASE}/pad-w03/cmd/ping", b'{"cid": "p1"}')
    wait_for(lambda: kiosk.received(f"{BASE}/kiosk-01/cmd/ping"), 5, what="kiosk's own command")
    wait_for(lambda: pad.received(f"{BASE}/pad-w03/cmd/ping"), 5, what="pad's own command")
    time.sleep(QUIET_S)
    assert pad.live_topics() == [f"{BASE}/pad-w03/cmd/ping"]
    assert not pad.received(f"{BASE}/kiosk-01/ack")


def test_devices_read_the_sites_retained_topics_and_only_the_site_writes_them(peers):
    site = peers("site-service")
    for name in ("roster", "directory", "survey", "staff"):
        payload = json.dumps({"v": 1, "what": name}).encode()
        assert not site.publish(f"{BASE}/{name}", payload, retain=True).is_failure
    pad = peers("pad-w03")
    pad.subscribe(f"{BASE}/roster")
    pad.subscribe(f"{BASE}/directory")
    pad.subscribe(f"{BASE}/survey")
    pad.subscribe(f"{BASE}/staff")
    wait_for(lambda: len(pad.received()) == 4, 5, what="the four retained site topics")
    assert all(json.loads(p)["v"] == 1 for _, p in pad.received())


def test_the_site_service_may_use_a_shared_subscription(peers):
    collector = peers("site-service", client_id="collector-1")
    collector.subscribe(f"$share/collect/{BASE}/+/events/#")
    kiosk = peers("kiosk-01")
    kiosk.publish(f"{BASE}/kiosk-01/events/feedback", b'{"seq": 2}')
    wait_for(
        lambda: collector.received(f"{BASE}/kiosk-01/events/feedback"),
        5,
        what="the event through the shared subscription",
    )


def test_a_client_without_a_certificate_is_refused(peers):
    anonymous = peers("nobody", cert=None, key=None, connect=False)
    assert not anonymous.connect()


def test_a_certificate_from_another_ca_is_refused(peers, tmp_path):
    other = SiteCA.init(tmp_path / "other-ca")
    forged = other.issue_device("kiosk-01", "main")
    (tmp_path / "k.crt").write_bytes(forged.cert)
    (tmp_path / "k.key").write_bytes(forged.key)
    stranger = peers(
        "stranger",
        client_id="kiosk-01",
        cert=tmp_path / "k.crt",
        key=tmp_path / "k.key",
        connect=False,
    )
    assert not stranger.connect()


def test_the_broker_certificate_cannot_be_used_as_a_client(peers, site):
    server = peers(
        "server",
        cert=site.broker_dir / "server.crt",
        key=site.broker_dir / "server.key",
        connect=False,
    )
    assert not server.connect()
