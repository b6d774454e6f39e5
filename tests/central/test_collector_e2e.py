"""Device -> broker -> collector -> database, with the faults the site must survive."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from central.db import devices, events, gaps, metadata, ratings, sessions
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker]


def rating(i: int, window: str = "W03") -> dict:
    return {"window": window, "staff": "E1024", "score": 1 + i % 4, "scale": 4, "label": "x",
            "reason": None, "prompt": None, "misuse": False, "response_ms": 1000 + i}


def db_count(url: str, device: str | None = None) -> int:
    eng = create_engine(url)
    metadata.create_all(eng)
    q = select(func.count()).select_from(events)
    if device:
        q = q.where(events.c.device == device)
    with eng.connect() as c:
        n = c.execute(q).scalar_one()
    eng.dispose()
    return n


def db_rows(url: str, table, *where):
    eng = create_engine(url)
    with eng.connect() as c:
        rows = c.execute(select(table).where(*where)).all()
    eng.dispose()
    return rows


def outbox_empty(up) -> bool:
    st = up.outbox.stats()
    return st.waiting == 0 and st.sent_unacked == 0


def test_events_stored_once_and_outbox_emptied_by_the_site_ack(
        broker, device_factory, collector_factory, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a").start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: up.link.state.connected, 10, what="device connected")
    wait_for(lambda: "connected to" in col.output(), 15, what="collector connected")
    for i in range(20):
        up.record("rating", rating(i))
    wait_for(lambda: db_count(db) == 20, 20, what="20 events in the database")
    wait_for(lambda: outbox_empty(up), 15, what="outbox emptied by the site ack")
    assert up.outbox.stats().site_acked_seq == 20
    rows = db_rows(db, ratings)
    assert sorted(r.response_ms for r in rows) == [1000 + i for i in range(20)]
    dev = db_rows(db, devices)[0]
    assert (dev.first_seq, dev.acked_seq, dev.state) == (1, 20, "online")
    assert db_rows(db, gaps) == []
