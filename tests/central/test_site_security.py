"""Issue 12, end to end: one device certificate cannot make the site store, ack or suppress
another device's events. A collector process with its own certificate, on the broker that
`provision broker` configures, and on a lax broker that lets a forged topic through."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.db import devices, events, gaps, streams
from tests.central.test_collector_e2e import db_rows
from tests.conftest import free_port, wait_for
from tests.provisioning.conftest import BASE, Peer, Site, SiteBroker, make_site

pytestmark = [pytest.mark.broker]

EPOCH = "c0ffee" * 4
FORGED = f"{BASE}/pad-a/events/{BASE}/pad-b/events/rating"


def envelope(device: str, seq: int, n: int) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "id": f"0193a1b2-0000-7000-8000-{n:012d}",
            "seq": seq,
            "epoch": EPOCH,
            "device": device,
            "site": "main",
            "type": "rating",
            "ts": "2026-11-23T09:41:12.345+08:00",
            "clock_synced": True,
            "data": {
                "window": "W03",
                "staff": None,
                "score": 1,
                "scale": 4,
                "label": "不满意",
                "prompt": None,
                "misuse": False,
                "response_ms": None,
            },
        }
    ).encode()


@pytest.fixture(scope="module")
def tls_site() -> Iterator[tuple[Site, SiteBroker]]:
    base = Path(tempfile.mkdtemp(prefix="careterm-sec-"))
    base.chmod(0o755)
    site = make_site(base, free_port())
    broker = SiteBroker(site)
    try:
        yield site, broker
    finally:
        broker.stop()
        shutil.rmtree(base, ignore_errors=True)


def peer(site: Site, name: str, client_id: str | None = None) -> Peer:
    ident = site.identity(name)
    p = Peer(
        site.port,
        site.broker_dir / "ca.crt",
        ident / "device.crt",
        ident / "device.key",
        client_id or name,
    )
    assert p.connect()
    return p


def test_a_pad_cannot_make_the_site_store_or_ack_events_as_another_pad(
    tls_site, collector_factory, tmp_path: Path
) -> None:
    site, _ = tls_site
    bd = site.broker_dir
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(
        f"mqtts://localhost:{site.port}",
        db,
        "--cafile",
        str(bd / "ca.crt"),
        "--cert",
        str(bd / "collector.crt"),
        "--key",
        str(bd / "collector.key"),
    ).start()
    wait_for(lambda: "subscribed" in col.output(), 20, what="collector subscribed over TLS")
    pad_b = peer(site, "pad-b")
    pad_b.subscribe(f"{BASE}/pad-b/ack")
    pad_a = peer(site, "pad-a")
    # 1. the nested topic of the issue: refused by the broker (ACL `events/+`)
    for i in range(5):
        assert pad_a.publish(FORGED, envelope("pad-b", 1 + i, 100 + i)).is_failure
    # 2. pad-b's envelopes on pad-a's own topic: the broker must let them through (it is
    #    pad-a's topic), the collector refuses them
    for i in range(10):
        assert not pad_a.publish(
            f"{BASE}/pad-a/events/rating", envelope("pad-b", 1 + i, 200 + i)
        ).is_failure
    # 3. pad-b's own events
    for i in range(3):
        assert not pad_b.publish(
            f"{BASE}/pad-b/events/rating", envelope("pad-b", 1 + i, 300 + i)
        ).is_failure
    wait_for(lambda: len(db_rows(db, events)) == 3, 15, what="pad-b's three events")
    wait_for(
        lambda: (
            [json.loads(p) for _, p in pad_b.received(f"{BASE}/pad-b/ack")][-1:]
            == [{"seq": 3, "epoch": EPOCH}]
        ),
        10,
        what="pad-b's ack for its own three events",
    )
    time.sleep(0.5)
    assert col.stop() == 0
    stored = db_rows(db, events)
    assert sorted(r.id[-3:] for r in stored) == ["300", "301", "302"]
    assert {r.device for r in stored} == {"pad-b"}
    acks = [json.loads(p) for _, p in pad_b.received(f"{BASE}/pad-b/ack")]
    assert all(a["seq"] <= 3 for a in acks)  # no forged seq ever acked for pad-b
    assert [(d.device, d.acked_seq) for d in db_rows(db, devices)] == [("pad-b", 3)]
    assert [(s.device, s.max_seq) for s in db_rows(db, streams)] == [("pad-b", 3)]
    assert db_rows(db, gaps) == []  # forged seqs 4..10 opened no gap (and asked no resend)
    out = col.output()
    assert out.count("refused an envelope that does not match its topic from pad-a") == 1
    assert "10 refused (10 mismatch)" in out


def test_a_forged_topic_a_lax_broker_lets_through_is_refused_by_the_collector(
    broker, subscriber_factory, collector_factory, tmp_path: Path
) -> None:
    """A broker with the old ACL (`events/#`), or none: the collector still refuses it."""
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    pub = subscriber_factory(broker.port, [f"{BASE}/pad-b/ack"])
    for i in range(10):
        pub.publish(FORGED, envelope("pad-b", 1 + i, 400 + i))
    pub.publish(f"{BASE}/pad-b/events/rating", envelope("pad-b", 1, 500))
    wait_for(lambda: len(db_rows(db, events)) == 1, 15, what="the one real event")
    wait_for(lambda: pub.payloads("/ack") == [{"seq": 1, "epoch": EPOCH}], 10, what="its ack")
    assert col.stop() == 0
    out = col.output()
    assert out.count("refused a topic of another shape from pad-a") == 1
    assert "10 refused (10 topic)" in out
    assert [r.id[-3:] for r in db_rows(db, events)] == ["500"]
