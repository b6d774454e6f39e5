"""The site broker as `provision broker` writes it: client id bound to the certificate
(SPEC 9.1) and one narrow ACL per site role (SPEC 9.5), against a real mosquitto."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.provisioning.conftest import BASE

pytestmark = pytest.mark.broker

QUIET_S = 0.3


def test_a_client_id_naming_another_device_neither_kicks_it_off_nor_touches_its_session(peers):
    """Issue 12: a valid pad certificate connecting with client id `pad-b` took pad-b's
    session (its queued commands lost) and, in a loop, cut pad-b's link 16 times in 15 s."""

    pad_b = peers("pad-b", connect=False)
    assert pad_b.connect(clean_start=False, session_expiry=3600)
    pad_b.subscribe(f"{BASE}/pad-b/cmd/#")
    for _ in range(10):  # the reconnect loop of the issue
        impostor = peers("pad-a", client_id="pad-b", connect=False)
        assert impostor.connect()  # admitted, as pad-a
        impostor.subscribe(f"{BASE}/pad-b/cmd/#")
        impostor.close()
    time.sleep(QUIET_S)
    assert not pad_b.disconnected.is_set()  # never kicked off

    # pad-b away with commands queued in its session; the impostor comes with a clean start
    pad_b.close()
    collector = peers("collector")
    queue = peers("queue")
    assert not collector.publish(f"{BASE}/pad-b/cmd/ping", b'{"cid": "queued-1"}').is_failure
    assert not queue.publish(f"{BASE}/pad-b/cmd/prompt", b'{"cid": "queued-2"}').is_failure
    impostor = peers("pad-a", client_id="pad-b", connect=False)
    assert impostor.connect(clean_start=True)
    impostor.subscribe(f"{BASE}/pad-b/cmd/#")
    time.sleep(QUIET_S)
    assert impostor.received() == []  # pad-b's commands are not its to read
    impostor.close()

    back = peers("pad-b", connect=False)
    assert back.connect(clean_start=False, session_expiry=3600)
    wait_for(lambda: len(back.received()) == 2, 5, what="both commands queued while away")
    assert sorted(t for t, _ in back.received()) == [
        f"{BASE}/pad-b/cmd/ping",
        f"{BASE}/pad-b/cmd/prompt",
    ]


def test_two_tools_on_one_certificate_share_one_client_id(peers):
    """The flip side, and why each collector needs its own certificate: the broker makes the
    certificate's name the client id, so a second client with it replaces the first."""
    first = peers("collector", client_id="collect-a")
    peers("collector", client_id="collect-b")
    wait_for(first.disconnected.is_set, 5, what="the first one replaced")


def _deliveries(peers, reader, topics: list[str]) -> list[str]:
    """Topics `reader` receives when each device publishes them (a collector sees them all,
    so once it has, the broker has handled every delivery)."""
    observer = peers("collector-2")
    for t in ("events/#", "alerts/#", "status", "telemetry", "reply"):
        observer.subscribe(f"{BASE}/+/{t}")
    for t in topics:
        reader.subscribe(t)
    kiosk = peers("kiosk-01")
    sent = [
        f"{BASE}/kiosk-01/events/checkin",
        f"{BASE}/kiosk-01/events/rating",
        f"{BASE}/kiosk-01/alerts/printer",
        f"{BASE}/kiosk-01/telemetry",
        f"{BASE}/kiosk-01/reply",
    ]
    for t in sent:
        assert not kiosk.publish(t, b"{}").is_failure, t
    wait_for(lambda: len(observer.live_topics()) >= len(sent), 5, what="the observer")
    time.sleep(QUIET_S)
    return reader.live_topics()


def test_the_collector_reads_what_devices_publish_and_writes_only_acks_resend_and_ping(peers):
    c = peers("collector")
    got = _deliveries(
        peers,
        c,
        [f"{BASE}/+/events/#", f"{BASE}/+/alerts/#", f"{BASE}/+/telemetry", f"{BASE}/+/reply"],
    )
    assert len(got) == 5
    for t in (f"{BASE}/pad-w03/ack", f"{BASE}/pad-w03/cmd/resend", f"{BASE}/pad-w03/cmd/ping"):
        assert not c.publish(t, b'{"cid": "c"}').is_failure, t
    for t in (
        f"{BASE}/roster",
        f"{BASE}/pad-w03/cmd/prompt",
        f"{BASE}/pad-w03/cmd/staff",
        f"{BASE}/pad-w03/events/rating",
    ):
        assert c.publish(t, b"{}").is_failure, t


def test_the_roster_publisher_writes_the_site_documents_and_reads_no_device(peers):
    r = peers("roster")
    assert _deliveries(peers, r, [f"{BASE}/#"]) == []
    for doc in ("roster", "directory", "survey", "staff"):
        assert not r.publish(f"{BASE}/{doc}", b'{"v": 1}', retain=True).is_failure
    for t in (f"{BASE}/pad-w03/ack", f"{BASE}/pad-w03/cmd/ping", f"{BASE}/pad-w03/events/rating"):
        assert r.publish(t, b"{}").is_failure, t


@pytest.mark.parametrize("role", ["alerts", "dashboard"])
def test_the_alert_forwarder_and_the_dashboard_get_no_topic_at_all(peers, role):
    """Both read the site database; at the broker they may connect and nothing more."""
    p = peers(role)
    assert _deliveries(peers, p, ["#", f"{BASE}/+/status"]) == []
    p.subscribe(f"{BASE}/roster")  # retained documents every device may read: not these
    time.sleep(QUIET_S)
    assert p.received() == []
    for t in (
        f"{BASE}/roster",
        f"{BASE}/pad-w03/ack",
        f"{BASE}/pad-w03/cmd/ping",
        f"{BASE}/pad-w03/events/rating",
    ):
        assert p.publish(t, b"{}").is_failure, t


def test_the_queue_system_prompts_and_reads_ratings_and_replies_only(peers):
    q = peers("queue")
    got = _deliveries(peers, q, [f"{BASE}/#"])
    assert sorted(got) == [f"{BASE}/kiosk-01/events/rating", f"{BASE}/kiosk-01/reply"]
    # SPEC 4: the window's commands (prompt, staff, pause, resume); before, no certificate
    # `provision broker` issued could send pause or resume at all
    for name in ("prompt", "staff", "pause", "resume"):
        t = f"{BASE}/pad-w03/cmd/{name}"
        assert not q.publish(t, b'{"cid": "q"}').is_failure, t
    for t in (
        f"{BASE}/roster",
        f"{BASE}/pad-w03/ack",
        f"{BASE}/pad-w03/cmd/resend",
        f"{BASE}/pad-w03/cmd/print_test",
        f"{BASE}/pad-w03/events/rating",
    ):
        assert q.publish(t, b"{}").is_failure, t


def test_the_retained_roster_reaches_a_kiosk_and_no_site_role_but_the_publisher(peers):
    """The roster's pattern line is for every user: the collector and the queue system, which
    have topics of their own, are denied it by name."""
    assert not peers("roster").publish(f"{BASE}/roster", b'{"v": 1}', retain=True).is_failure
    kiosk = peers("kiosk-01")
    kiosk.subscribe(f"{BASE}/roster")
    wait_for(lambda: kiosk.received(f"{BASE}/roster"), 5, what="the kiosk's roster")
    for role in ("collector", "queue"):
        p = peers(role)
        p.subscribe(f"{BASE}/roster")
        p.subscribe(f"{BASE}/#")
        time.sleep(QUIET_S)
        assert p.received(f"{BASE}/roster") == [], role
