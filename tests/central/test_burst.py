"""Bursts (issue 12): a collector that falls behind loses nothing at the broker, and two
collectors on one PostgreSQL store each event once with exact per-device accounting."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, func, select

from careterm.harness import subscribed_client
from central.db import events, gaps, streams
from provisioning.broker import MAX_INFLIGHT_MESSAGES, MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

EPOCH = "feed" * 8

# The queue limits `provision broker` writes (tests/provisioning/test_broker_config.py checks
# the generated file carries them), in place of the test broker's own.
SITE_LIMITS = (
    f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
    f"max_queued_bytes {MAX_QUEUED_BYTES}\n"
    f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}\n"
)


def envelopes(devices: int, per_device: int) -> list[tuple[str, bytes]]:
    """Interleaved events of new devices (seq 1.. each), as a fleet's backlog arrives."""
    out = []
    for seq in range(1, per_device + 1):
        for d in range(devices):
            dev = f"pad-{d:03d}"
            body = {
                "v": 1,
                "id": str(uuid.uuid4()),
                "seq": seq,
                "epoch": EPOCH,
                "device": dev,
                "site": "main",
                "type": "rating",
                "ts": "2026-11-23T09:41:12.345+08:00",
                "clock_synced": True,
                "data": {
                    "window": "W01",
                    "staff": None,
                    "score": 1 + seq % 4,
                    "scale": 4,
                    "label": "x",
                    "prompt": None,
                    "misuse": False,
                    "response_ms": None,
                },
            }
            out.append((f"careterm/main/{dev}/events/rating", json.dumps(body).encode()))
    return out


class Fleet:
    """One raw MQTT client publishing the fleet's events (QoS 1) and reading its acks."""

    def __init__(self, port: int) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self.resends: list[str] = []
        self.lock = threading.Lock()
        self.puback = 0

        def prepare(c: mqtt.Client) -> None:
            c.max_inflight_messages_set(100)
            c.max_queued_messages_set(0)
            c.on_publish = self._on_publish

        self.c = subscribed_client(
            port,
            ["careterm/main/+/ack", "careterm/main/+/cmd/resend"],
            f"fleet-{os.getpid()}",
            self._on_message,
            prepare=prepare,
        )

    def _on_publish(self, *a: Any) -> None:
        with self.lock:
            self.puback += 1

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            dev = m.topic.split("/")[2]
            if m.topic.endswith("/ack"):
                self.acks[dev] = json.loads(m.payload)
            else:
                self.resends.append(dev)

    def publish(self, msgs: list[tuple[str, bytes]]) -> None:
        for topic, payload in msgs:
            self.c.publish(topic, payload, qos=1)
        wait_for(lambda: self.puback >= len(msgs), 60, what="every PUBACK from the broker")

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def counts(url: str) -> tuple[int, int, list[Any], int]:
    eng = create_engine(url)
    with eng.connect() as c:
        n = c.execute(select(func.count()).select_from(events)).scalar_one()
        distinct = c.execute(select(func.count(func.distinct(events.c.id)))).scalar_one()
        st = c.execute(select(streams).order_by(streams.c.device)).all()
        g = c.execute(select(func.count()).select_from(gaps)).scalar_one()
    eng.dispose()
    return n, distinct, st, g


def test_a_burst_of_20000_reaches_a_stalled_collector_without_a_loss(
    broker_factory, collector_factory, tmp_path: Path
) -> None:
    """Issue 12: `max_queued_messages 10000` dropped 9,333 events of a burst for a collector
    that fell behind. The collector is stopped dead (SIGSTOP) while 20,000 events arrive: the
    broker must keep every one (4,000 in flight to it, the rest queued) until it resumes."""
    broker = broker_factory(extra_conf=SITE_LIMITS).start()
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", "--gap-timeout", "600")
    col.start()
    wait_for(lambda: "subscribed" in col.output(), 20, what="collector subscribed")
    fleet = Fleet(broker.port)
    msgs = envelopes(100, 200)
    assert len(msgs) == 20_000
    col.proc.send_signal(signal.SIGSTOP)
    try:
        fleet.publish(msgs)  # every one PUBACKed by the broker while the collector is stalled
    finally:
        col.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: counts(db)[0] == 20_000, 120, what="all 20,000 stored")
    wait_for(
        lambda: (
            len(fleet.acks) == 100
            and all(a == {"seq": 200, "epoch": EPOCH} for a in fleet.acks.values())
        ),
        30,
        what="every device acked up to its last event",
    )
    fleet.close()
    n, distinct, st, g = counts(db)
    assert (n, distinct, g) == (20_000, 20_000, 0)
    assert {(s.first_seq, s.acked_seq, s.max_seq) for s in st} == {(1, 200, 200)}
    assert fleet.resends == []  # nothing had to be asked for again: nothing was dropped
    assert col.stop() == 0
    assert "20000 stored, 0 duplicates" in col.output()


@pytest.mark.postgres
def test_two_collectors_on_postgresql_store_a_burst_once_with_exact_accounting(
    pg_url, broker_factory, collector_factory
) -> None:
    """Issue 12: two collectors on PostgreSQL had a deadlock (530 messages retried, "stored"
    over-counted) and gave 9 of 20 new devices a wrong first seq and a resend probe."""
    broker = broker_factory(extra_conf=SITE_LIMITS).start()
    cols = [
        collector_factory(broker.url, pg_url, "--client-id", f"col-{n}", "--gap-timeout", "30")
        for n in "ab"
    ]
    for c in cols:
        c.start()
    for c in cols:
        wait_for(lambda c=c: "subscribed" in c.output(), 20, what="collector subscribed")
    fleet = Fleet(broker.port)
    devices, per_device = 20, 500
    fleet.publish(envelopes(devices, per_device))
    total = devices * per_device
    wait_for(lambda: counts(pg_url)[0] == total, 120, what="every event stored")
    wait_for(
        lambda: (
            len(fleet.acks) == devices
            and all(a == {"seq": per_device, "epoch": EPOCH} for a in fleet.acks.values())
        ),
        30,
        what="every device acked up to its last event",
    )
    fleet.close()
    n, distinct, st, g = counts(pg_url)
    assert (n, distinct) == (total, total)
    assert len(st) == devices
    assert {(s.first_seq, s.acked_seq, s.max_seq, s.open_gaps) for s in st} == {
        (1, per_device, per_device, 0)
    }
    assert g == 0  # holes between the two collectors' batches filled by themselves
    assert fleet.resends == []  # no probe, no resend: nothing was missing
    stored = []
    for c in cols:
        assert c.stop() == 0
        out = c.output()
        line = next(x for x in out.splitlines() if "stopped;" in x)
        stored.append(int(line.split("stopped; ")[1].split()[0]))
        assert "ERROR" not in out and "rolled back" not in out and "Traceback" not in out
        assert "0 transactions retried" in line
    assert sum(stored) == total and min(stored) > 0  # both worked, "stored" counted exactly
