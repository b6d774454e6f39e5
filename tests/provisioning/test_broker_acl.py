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


def test_each_device_connects_with_its_own_certificate_and_the_collector_reads_its_events(peers):
    site = peers("collector")
    site.subscribe(f"{BASE}/+/events/#")
    site.subscribe(f"{BASE}/+/status")
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
    site = peers("collector")
    site.subscribe(f"{BASE}/+/events/#")
    site.subscribe(f"{BASE}/+/status")
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
    pad.close()
    # nor did the retained forgeries stick for later readers
    late = peers("collector-2")
    late.subscribe(f"{BASE}/kiosk-01/status")
    kiosk = peers("kiosk-01")
    kiosk.subscribe(f"{BASE}/roster")
    pad_again = peers("pad-w03")
    pad_again.subscribe(f"{BASE}/pad-w03/ack")
    time.sleep(QUIET_S)
    received = late.received() + kiosk.received() + pad_again.received()
    assert not any(b"forged" in p or b"999999" in p or b"offline" in p for _, p in received)


def test_a_nested_topic_naming_another_device_is_refused_by_the_broker(peers):
    """Issue 12: `events/#` let pad-a publish below its own events what looked like pad-b's."""
    site = peers("collector")
    site.subscribe(f"{BASE}/+/events/#")
    pad = peers("pad-a")
    forged = f"{BASE}/pad-a/events/{BASE}/pad-b/events/rating"
    assert pad.publish(forged, b'{"forged": true}').is_failure  # not authorized
    assert pad.publish(f"{BASE}/pad-a/alerts/x/y", b'{"forged": true}').is_failure
    assert not pad.publish(f"{BASE}/pad-a/events/rating", b"marker").is_failure
    wait_for(lambda: site.received(f"{BASE}/pad-a/events/rating"), 5, what="the marker")
    time.sleep(QUIET_S)
    assert site.live_topics() == [f"{BASE}/pad-a/events/rating"]


def test_a_client_id_naming_another_device_gives_no_rights_over_it(peers):
    """%u is the certificate's name: choosing another device's client id changes nothing."""
    site = peers("collector")
    site.subscribe(f"{BASE}/+/events/#")
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
    site = peers("collector")
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
    site = peers("roster")
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


def test_two_collectors_with_their_own_certificates_share_a_subscription(peers):
    one, two = peers("collector"), peers("collector-2")
    for c in (one, two):
        c.subscribe(f"$share/collect/{BASE}/+/events/#")
    kiosk = peers("kiosk-01")
    for i in range(10):
        kiosk.publish(f"{BASE}/kiosk-01/events/feedback", f'{{"seq": {i}}}'.encode())
    wait_for(
        lambda: len(one.received() + two.received()) == 10,
        5,
        what="every event through the shared subscription",
    )
    assert one.received() and two.received()  # both members got a share
    assert not one.disconnected.is_set() and not two.disconnected.is_set()


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
