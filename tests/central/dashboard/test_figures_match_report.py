"""The console's "today per window / per clerk" is `site report --from today --to today --by
window|staff` on the same database (SQLite and PostgreSQL): one module counts both
(`central.report_model`). And the console keeps today's figures between polls, reading again
only the devices that stored something."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from central.dashboard.data import ConsoleData, FigureRow
from central.report_model import build_report
from tests.central.dashboard.site_data import (
    STAFF,
    TZ,
    Device,
    fill_site,
    rating,
    site_now,
    store_envelopes,
)
from tests.conftest import run_careterm

NAMES = {s["staff"]: s["name"] for s in STAFF}


def odd_cases(engine: Engine, now: float, day: str) -> None:
    """What a busy day does not show by itself: a pad stamping UTC on both sides of the
    site's midnight, a prompt taken only by a too-fast press, a reason whose rating never
    arrived, ratings with no clerk signed in, a five-key pad."""
    midnight = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=TZ).timestamp()
    utc = Device("pad-utc")
    early, late = midnight + 30 * 60, midnight + 24 * 3600 + 30 * 60  # 00:30 today / tomorrow

    def utc_event(etype: str, data: dict[str, Any], at: float) -> str:
        eid = utc.event(etype, data, at)
        utc.envelopes[-1][1]["ts"] = datetime.fromtimestamp(at, UTC).isoformat()
        return eid

    # Stored under yesterday's date by the device's own clock: today at the site.
    utc_event("rating", rating("W09", "E1009", 4, str(uuid.uuid4()), response_ms=2500), early)
    # Stored under today's date by the device: tomorrow at the site, in neither.
    utc_event("rating", rating("W09", "E1009", 1, str(uuid.uuid4()), response_ms=2500), late)

    odd = Device("pad-w10")
    at = now - 1800
    fast = str(uuid.uuid4())
    odd.event("rating", rating("W10", "E1010", 1, fast, misuse=True, response_ms=80), at)
    odd.event(
        "prompt",
        {"prompt": fast, "ticket": "A044", "window": "W10", "staff": "E1010", "outcome": "expired"},
        at + 30,
    )
    odd.event(
        "reason",
        {"rating": str(uuid.uuid4()), "window": "W10", "staff": "E1010", "reason": "其他"},
        at + 40,
    )
    for score in (4, 2):
        nobody = rating("W10", "", score, str(uuid.uuid4()), response_ms=3000)
        nobody["staff"] = None
        odd.event("rating", nobody, at + 60)
    five = Device("pad-w11")
    for score in (5, 4, 3):
        data = rating("W11", "E1011", 1, str(uuid.uuid4()), response_ms=1800)
        data.update(score=score, scale=5, label=str(score), reason_asked=False)
        five.event("rating", data, at + 90)
    store_envelopes(engine, utc.envelopes + odd.envelopes + five.envelopes)


def report_rows(db_url: str, day: str, by: str, staff_file: Path) -> dict[str, dict[str, str]]:
    r = run_careterm(
        "site",
        "report",
        "--db",
        db_url,
        "--from",
        day,
        "--to",
        day,
        "--by",
        by,
        "--format",
        "csv",
        "--timezone",
        "Asia/Shanghai",
        "--staff",
        str(staff_file),
    )
    assert r.returncode == 0, r.stderr
    return {row[by]: row for row in csv.DictReader(io.StringIO(r.stdout))}


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def as_report_row(f: FigureRow) -> dict[str, str]:
    """The console's row in the report's CSV terms."""
    return {
        "count": str(f.rated + f.misuse),
        "rated": str(f.rated),
        "misuse": str(f.misuse),
        **{f"score_{i}": str(f.scores[i]) for i in range(1, 6)},
        "satisfied_pct": _pct(f.satisfied_pct),
        "prompts": str(f.prompts),
        "prompted": str(f.prompted),
        "response_pct": _pct(f.response_pct),
        "median_response_ms": "" if f.median_response_ms is None else str(f.median_response_ms),
    }


def assert_same(db_url: str, data: ConsoleData, now: float, staff_file: Path) -> None:
    snap = data.snapshot(now)
    for by, rows in (("window", snap.windows), ("staff", snap.staff)):
        want = report_rows(db_url, snap.day, by, staff_file)
        got = {r.key: as_report_row(r) for r in rows}
        assert set(got) == set(want), by
        for key, row in got.items():
            assert row == {k: want[key][k] for k in row}, (by, key)
        if by == "staff":
            assert {r.key: r.name or "" for r in rows} == {
                k: v["staff_name"] for k, v in want.items()
            }
    engine = data.engine
    total = build_report(engine, by="window", day_from=snap.day, day_to=snap.day).total
    assert (snap.total.rated, snap.total.misuse, snap.total.prompts, snap.total.prompted) == (
        total.rated,
        total.misuse,
        total.prompts,
        total.prompted,
    )
    assert (snap.total.satisfied_pct, snap.total.response_pct) == (
        total.satisfied_pct,
        total.response_pct,
    )


def test_today_per_window_and_staff_is_the_reports_day(
    engine: Engine, db_url: str, staff_file: Path
) -> None:
    now = site_now()
    day = datetime.fromtimestamp(now, TZ).date().isoformat()
    fill_site(engine, now)
    odd_cases(engine, now, day)
    data = ConsoleData(engine, tz=TZ, staff_names=NAMES)
    assert_same(db_url, data, now, staff_file)

    snap = data.snapshot(now)
    w = {r.key: r for r in snap.windows}
    assert w["W09"].rated == 1  # the UTC pad's 00:30 today, not its 00:30 tomorrow
    # the too-fast press: one prompt, not answered; the two ratings with no clerk: answered
    assert (w["W10"].prompts, w["W10"].prompted, w["W10"].misuse) == (3, 2, 1)
    assert (w["W11"].satisfied_pct, w["W11"].scores[5]) == (66.7, 1)
    assert "(none)" in {r.key for r in snap.staff}

    # The day goes on: new ratings on one pad, the reason of an earlier one, a prompt that
    # expired, and a pad never seen before. The kept figures move exactly as the report's.
    later = now + 5
    pad = Device("pad-w01", seq=10_000)
    p = str(uuid.uuid4())
    rid = pad.event("rating", rating("W01", "E1001", 1, p, response_ms=4000), later)
    pad.event("reason", {"rating": rid, "window": "W01", "staff": "E1001", "reason": "其他"}, later)
    pad.event(
        "prompt",
        {
            "prompt": str(uuid.uuid4()),
            "ticket": None,
            "window": "W01",
            "staff": "E1001",
            "outcome": "superseded",
        },
        later,
    )
    new = Device("pad-w12")
    new.event("rating", rating("W12", "E1012", 3, str(uuid.uuid4()), response_ms=2000), later)
    store_envelopes(engine, pad.envelopes + new.envelopes)
    assert_same(db_url, data, later, staff_file)
    fresh = ConsoleData(engine, tz=TZ, staff_names=NAMES).snapshot(later)
    kept = data.snapshot(later)
    assert (kept.windows, kept.staff, kept.total) == (fresh.windows, fresh.staff, fresh.total)


class Statements:
    """The SQL an engine runs, with its parameters."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append((statement, parameters))

    def reading(self, table: str) -> list[tuple[str, Any]]:
        return [(s, p) for s, p in self.seen if f"FROM {table}" in s]

    def clear(self) -> None:
        self.seen.clear()

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def test_a_poll_reads_only_the_devices_that_stored_something(engine: Engine) -> None:
    now = site_now()
    fill_site(engine, now)
    data = ConsoleData(engine, tz=TZ)
    first = data.snapshot(now)
    sql = Statements(engine)
    try:
        # Nothing new (telemetry does not count): no ratings, prompts, reasons or events read.
        again = data.snapshot(now + 2)
        for table in ("ratings", "prompts", "reasons", "events"):
            assert sql.reading(table) == [], table
        assert again.windows == first.windows and again.alerts == first.alerts

        # One pad stores a rating: only its rows are read again.
        pad = Device("pad-w02", seq=10_000)
        pad.event("rating", rating("W02", "E1002", 4, str(uuid.uuid4()), response_ms=3000), now)
        store_envelopes(engine, pad.envelopes)
        sql.clear()
        snap = data.snapshot(now + 4)
        (read,) = sql.reading("ratings")
        assert "pad-w02" in str(read[1]) and "pad-w01" not in str(read[1])
        w2 = {r.key: r for r in snap.windows}["W02"]
        assert w2.rated == {r.key: r for r in first.windows}["W02"].rated + 1

        # Once a minute, and when the day turns, every device is read again.
        sql.clear()
        data.snapshot(now + 4 + 61)
        (read,) = sql.reading("ratings")
        assert "pad-w01" not in str(read[1])  # no device list: all of them
        assert "day" in read[0]
    finally:
        sql.close()


def test_the_console_and_the_report_share_the_default_time_zone(engine: Engine) -> None:
    data = ConsoleData(engine)
    assert str(data.tz) == "Asia/Shanghai"  # as `site report --timezone`
    at = datetime.fromisoformat("2026-11-23T23:30:00+08:00").timestamp()
    assert data.today(at).isoformat() == "2026-11-23"
    assert data.today(at + 3600).isoformat() == "2026-11-24"
