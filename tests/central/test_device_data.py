"""What a compromised or misconfigured device can put in its data, and what the collector
does with it, on SQLite and PostgreSQL (audit of 2026-12-03, device data): values no column
holds and times no report can place are stored and acked, never counted; a batch the
database refuses never stops the batches after it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from central.db import events, insert_new_events, open_db, ratings
from central.messages import Refused, parse_message
from tests.central.test_accounting import EPOCH_A, Books, env, rating

CST = timezone(timedelta(hours=8))


def _stored(books: Books) -> dict[str, bool]:
    return {r.id: r.valid for r in books.rows(events)}


def _counted(books: Books) -> set[str]:
    return {r.event_id for r in books.rows(ratings)}


def test_a_response_time_no_column_holds_is_stored_and_acked_not_counted(engine) -> None:
    # ratings.response_ms is an `integer`: 10**12 made PostgreSQL refuse the event, 10**30
    # SQLite; either way it was dropped, never acked, and held the device's acks for good.
    books = Books(engine)
    good = env("pad-a", 1)
    huge = env("pad-a", 2, data=rating(response_ms=10**12))
    giant = env("pad-a", 3, data=rating(response_ms=10**30))
    after = env("pad-a", 4)
    books.store(good, huge, giant, after)
    assert _stored(books) == {
        good["id"]: True,
        huge["id"]: False,
        giant["id"]: False,
        after["id"]: True,
    }
    assert _counted(books) == {good["id"], after["id"]}
    assert books.acks("pad-a")[-1] == {"seq": 4, "epoch": EPOCH_A}


def test_ratings_stamped_where_no_report_can_place_them_are_stored_not_counted(
    engine, caplog
) -> None:
    books = Books(engine)
    now = datetime.now(CST)
    stamp = {
        "today": now.isoformat(timespec="milliseconds"),
        "late": (now - timedelta(days=3)).isoformat(timespec="milliseconds"),
        "wrong_zone": now.replace(tzinfo=UTC).isoformat(),  # 8 h ahead: counted
        "next_year": (now + timedelta(days=365)).isoformat(timespec="milliseconds"),
        "tomorrow_plus": (now + timedelta(days=2)).isoformat(timespec="milliseconds"),
        "year_1": "0001-01-01T00:00:00+14:00",
        "year_9999": "9999-12-31T23:59:59-14:00",
        "unset_clock": "1970-01-01T08:00:05+08:00",
    }
    sent = {name: {**env("pad-a", i + 1), "ts": ts} for i, (name, ts) in enumerate(stamp.items())}
    reason = env(
        "pad-a",
        len(sent) + 1,
        "reason",
        {"rating": sent["today"]["id"], "window": "W03", "staff": None, "reason": "x"},
    )
    reason["ts"] = stamp["next_year"]
    books.store(*sent.values(), reason)
    counted = {name for name, e in sent.items() if e["id"] in _counted(books)}
    assert counted == {"today", "late", "wrong_zone"}
    assert len(_stored(books)) == len(sent) + 1  # every one stored as it came
    assert books.rows(ratings, ratings.c.event_id == sent["today"]["id"])[0].reason is None
    assert books.acks("pad-a")[-1] == {"seq": len(sent) + 1, "epoch": EPOCH_A}
    assert f"rating {sent['next_year']['id']} stored" in caplog.text
    assert "ahead of the site's clock" in caplog.text and "careterm doctor" in caplog.text


@pytest.mark.parametrize(
    "leaf,body",
    [
        ("status", {"v": 1, "state": "online", "session": 2**40, "role": "rating_pad"}),
        (
            "telemetry",
            {
                "v": 1,
                "ts": "2026-11-23T09:00:00+08:00",
                "uptime_s": 1.0,
                "outbox_depth": 2**70,
                "clock_synced": True,
            },
        ),
        (
            "telemetry",
            {
                "v": 1,
                "ts": "2026-11-23T09:00:00+08:00",
                "uptime_s": 1.0,
                "outbox_depth": 0,
                "clock_synced": True,
                "cert_days_left": -(2**40),
            },
        ),
    ],
)
def test_status_and_telemetry_numbers_no_column_holds_are_refused(leaf: str, body: Any) -> None:
    with pytest.raises(Refused) as e:
        parse_message(f"careterm/main/pad-a/{leaf}", json.dumps(body).encode())
    assert e.value.kind == "payload" and "out of range" in str(e.value)


def test_a_batch_the_database_refused_does_not_break_the_batches_after_it(pg_url) -> None:
    # PostgreSQL: events go in through a temporary table created by the first transaction
    # of a connection; a flag on the connection said it existed even when that transaction
    # rolled back (and took the table with it), so every later batch was refused and
    # dropped ("relation careterm_events_in does not exist") until the collector restarted.
    eng = open_db(pg_url, writer=True)
    cols = ["id", "device", "site", "epoch", "type", "valid", "received_at", "topic", "payload"]

    def row(eid: str) -> tuple:
        return (eid, "pad-a", "main", EPOCH_A, "rating", True, time.time(), "t", "{}")

    try:
        with pytest.raises(RuntimeError), eng.begin() as conn:
            insert_new_events(conn, cols, [row("a-1")])
            raise RuntimeError("the database refused something later in the batch")
        with eng.begin() as conn:
            assert insert_new_events(conn, cols, [row("a-2")]) == {"a-2"}
        with eng.begin() as conn:
            assert insert_new_events(conn, cols, [row("a-3")]) == {"a-3"}
        with eng.connect() as conn:
            assert [r.id for r in conn.execute(select(events.c.id))] == ["a-2", "a-3"]
    finally:
        eng.dispose()


def test_ratings_from_a_device_whose_status_says_kiosk_are_stored_not_counted(
    engine, caplog
) -> None:
    books = Books(engine)
    status = {"v": 1, "state": "online", "session": 1, "role": "kiosk"}
    pad_status = {**status, "role": "rating_pad"}
    books.store(
        raw=[
            ("careterm/main/kiosk-1/status", status),
            ("careterm/main/pad-a/status", pad_status),
        ]
    )
    from_kiosk = env("kiosk-1", 1, data=rating(window="W01", staff="E0001"))
    from_pad = env("pad-a", 1)
    books.store(from_kiosk, from_pad)
    assert _counted(books) == {from_pad["id"]}
    assert _stored(books) == {from_kiosk["id"]: False, from_pad["id"]: True}
    assert books.acks("kiosk-1")[-1] == {"seq": 1, "epoch": EPOCH_A}
    assert f"kiosk-1: rating {from_kiosk['id']} stored, but" in caplog.text
