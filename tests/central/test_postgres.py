"""The same collector and report against the real PostgreSQL server on this machine."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import create_engine, func, select

from central.db import events, gaps, open_db
from tests.central.report_data import envelope, rating, store
from tests.central.test_collector_e2e import _stop_collect_lose_in_broker, outbox_empty
from tests.conftest import run_careterm, wait_for

pytestmark = [pytest.mark.postgres]


def pg_count(url: str) -> int:
    eng = create_engine(url)
    with eng.connect() as c:
        n = c.execute(select(func.count()).select_from(events)).scalar_one()
    eng.dispose()
    return n


@pytest.mark.broker
def test_collector_on_postgresql_stores_once_acks_and_fills_a_gap(
    pg_url, broker, device_factory, collector_factory
) -> None:
    col = collector_factory(
        broker.url, pg_url, "--client-id", "col-pg", "--gap-timeout", "1", "--ping-interval", "3600"
    ).start()
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector connected")
    _stop_collect_lose_in_broker(broker, up, col, pg_url, 3, 4)
    col.start()
    wait_for(lambda: col.output().count("subscribed") >= 2, 15, what="collector back")
    up.record("rating", rating("W03", "E1024", 4))
    wait_for(lambda: pg_count(pg_url) == 8, 30, what="gap filled on PostgreSQL")
    wait_for(lambda: outbox_empty(up), 15, what="outbox emptied")
    eng = create_engine(pg_url)
    with eng.connect() as c:
        wait_for(lambda: c.execute(select(gaps.c.state)).scalar() == "filled", 10, what="closed")
    with eng.connect() as c:
        g = c.execute(select(gaps)).all()
        seqs = sorted(json.loads(r.payload)["seq"] for r in c.execute(select(events)))
    eng.dispose()
    assert [(x.first_seq, x.last_seq, x.state) for x in g] == [(4, 7, "filled")]
    assert seqs == list(range(1, 9))


def test_report_on_postgresql(pg_url) -> None:
    engine = open_db(pg_url)
    e = [
        envelope("pad-w01", i + 1, f"2026-11-23T09:0{i}:00+08:00", rating("W01", "E1", s))
        for i, s in enumerate([4, 3, 1])
    ]
    store(engine, e + [dict(e[0])])
    engine.dispose()
    r = run_careterm("site", "report", "--db", pg_url, "--format", "csv")
    assert r.returncode == 0, r.stderr
    (row,) = csv.DictReader(io.StringIO(r.stdout))
    assert (row["window"], row["count"], row["score_1"], row["satisfied_pct"]) == (
        "W01",
        "3",
        "1",
        "66.7",
    )


@pytest.mark.broker
def test_nul_characters_and_lone_surrogates_do_not_wedge_the_collector(
    pg_url, broker, subscriber_factory, collector_factory
) -> None:
    col = collector_factory(broker.url, pg_url, "--client-id", "col-pg").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    pub = subscriber_factory(broker.port, ["careterm/main/pad-z/ack"])
    raw = (
        b'{"v":1,"id":"0193a1b2-0000-7000-8000-00000000000f","seq":1,"device":"pad-z",'
        b'"site":"main","type":"rating","ts":"2026-11-23T09:00:00\\u0000+08:00",'
        b'"clock_synced":true,"data":{"window":"W\\u00000","staff":"\\ud800","score":4,'
        b'"scale":4,"label":"x","prompt":null,"reason":"\\u0000","misuse":false,'
        b'"response_ms":null}}'
    )
    pub.publish("careterm/main/pad-z/events/rating", raw)
    ok = envelope("pad-z", 2, "2026-11-23T09:01:00+08:00", rating("W03", "E1", 3))
    pub.publish("careterm/main/pad-z/events/rating", ok)
    wait_for(lambda: pg_count(pg_url) == 2, 15, what="both stored")
    wait_for(
        lambda: pub.payloads("/ack") and pub.payloads("/ack")[-1] == {"seq": 2}, 10, what="ack 2"
    )
    assert col.proc is not None and col.proc.poll() is None
