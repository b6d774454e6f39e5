"""`site report` on generated data: exact numbers, the CSV columns, the table and the HTML page."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from central.db import open_db
from tests.central.report_data import envelope, rating, store
from tests.conftest import run_careterm

DAY = "2026-11-23"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    e = []
    # W01, scale 4: scores 4 4 4 3 2 1, plus a misuse press (not counted in the scores)
    for i, (score, reason, ms, hour) in enumerate(
        [
            (4, None, 1000, 9),
            (4, None, 2000, 9),
            (4, None, 3000, 10),
            (3, None, 4000, 10),
            (2, None, 5000, 10),
            (1, "等候时间长", 6000, 14),
        ]
    ):
        e.append(
            envelope(
                "pad-w01",
                i + 1,
                f"{DAY}T{hour:02d}:15:00+08:00",
                rating("W01", "E1001", score, reason=reason, response_ms=ms),
            )
        )
    e.append(
        envelope("pad-w01", 7, f"{DAY}T14:15:03+08:00", rating("W01", "E1001", 4, misuse=True))
    )
    # W02, scale 5: scores 5 5 4 1; the clerk changes half way
    for i, (score, staff, reason) in enumerate(
        [(5, "E1002", None), (5, "E1002", None), (4, "E1003", None), (1, "E1003", "服务态度差")]
    ):
        e.append(
            envelope(
                "pad-w02",
                i + 1,
                f"{DAY}T09:{10 + i}:00+08:00",
                rating("W02", staff, score, scale=5, reason=reason),
            )
        )
    # the day before, and one repeated event (stored once)
    e.append(envelope("pad-w02", 5, "2026-11-22T16:00:00+08:00", rating("W02", "E1002", 1, 5)))
    e.append(dict(e[0]))
    store(engine, e)
    engine.dispose()
    return url


def report(db: str, *args: str) -> str:
    r = run_careterm("site", "report", "--db", db, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_by_window_has_exact_figures(db: str) -> None:
    out = report(db, "--from", DAY, "--to", DAY, "--by", "window", "--format", "csv")
    header = out.splitlines()[0].split(",")
    assert header[:9] == [
        "window",
        "count",
        "score_1",
        "score_2",
        "score_3",
        "score_4",
        "score_5",
        "satisfied_pct",
        "misuse",
    ]
    got = {r["window"]: r for r in rows(out)}
    assert list(got) == ["W01", "W02"]
    w1, w2 = got["W01"], got["W02"]
    assert (w1["count"], w1["misuse"], w1["rated"]) == ("7", "1", "6")
    assert [w1[f"score_{i}"] for i in range(1, 6)] == ["1", "1", "1", "3", "0"]
    assert w1["satisfied_pct"] == "66.7"  # 4 of 6: scores 3 and 4 on a 4-point scale
    assert w1["misuse_pct"] == "14.3"
    assert w1["median_response_ms"] == "3500"
    assert w1["reasons"] == "等候时间长:1"
    assert (w2["count"], w2["misuse"]) == ("4", "0")
    assert [w2[f"score_{i}"] for i in range(1, 6)] == ["1", "0", "0", "1", "2"]
    assert w2["satisfied_pct"] == "75.0"  # scores 4 and 5 on a 5-point scale
    assert w2["median_response_ms"] == ""


def test_whole_period_and_other_groupings(db: str, tmp_path: Path) -> None:
    got = {r["window"]: r for r in rows(report(db, "--format", "csv"))}
    assert got["W02"]["count"] == "5" and got["W02"]["satisfied_pct"] == "60.0"
    by_hour = {
        r["hour"]: r for r in rows(report(db, "--from", DAY, "--by", "hour", "--format", "csv"))
    }
    assert {h: r["count"] for h, r in by_hour.items()} == {"9": "6", "10": "3", "14": "2"}
    assert by_hour["14"]["misuse"] == "1" and by_hour["14"]["satisfied_pct"] == "0.0"
    staff = tmp_path / "staff.json"
    staff.write_text(json.dumps([{"staff": "E1003", "name": "张伟"}], ensure_ascii=False))
    by_staff = {
        r["staff"]: r
        for r in rows(
            report(db, "--from", DAY, "--by", "staff", "--staff", str(staff), "--format", "csv")
        )
    }
    assert {s: r["count"] for s, r in by_staff.items()} == {
        "E1001": "7",
        "E1002": "2",
        "E1003": "2",
    }
    assert (
        by_staff["E1003"]["staff_name"] == "张伟" and by_staff["E1003"]["satisfied_pct"] == "50.0"
    )
    windows = tmp_path / "windows.csv"
    windows.write_text("window,department\nW01,收费处\n")
    by_dept = {
        r["department"]: r
        for r in rows(
            report(
                db,
                "--from",
                DAY,
                "--by",
                "department",
                "--windows",
                str(windows),
                "--format",
                "csv",
            )
        )
    }
    assert {d: r["count"] for d, r in by_dept.items()} == {"(unmapped)": "4", "收费处": "7"}
    by_day = {r["day"]: r["count"] for r in rows(report(db, "--by", "day", "--format", "csv"))}
    assert by_day == {"2026-11-22": "1", DAY: "11"}


def test_table_and_html(db: str) -> None:
    table = report(db, "--from", DAY, "--to", DAY)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["window", "count", "1"]
    total = next(x for x in lines if x.startswith("TOTAL"))
    assert total.split()[:8] == ["TOTAL", "11", "2", "1", "1", "4", "2", "70.0%"]
    assert "delivery: 0 open gaps" in table
    html = report(db, "--from", DAY, "--to", DAY, "--format", "html")
    assert html.count("<svg") == 4 and "<script" not in html and "http" not in html
    assert "70.0%" in html and "W01" in html and "等候时间长" in html


def test_bad_arguments_exit_2(db: str, tmp_path: Path) -> None:
    r = run_careterm("site", "report", "--db", db, "--from", "23.11.2026")
    assert r.returncode == 2 and "--from '23.11.2026': use a date like 2026-11-23" in r.stderr
    r = run_careterm("site", "report", "--db", db, "--by", "department")
    assert r.returncode == 2 and "needs --windows" in r.stderr
    bad = tmp_path / "w.csv"
    bad.write_text("win,dept\nW01,x\n")
    r = run_careterm("site", "report", "--db", db, "--by", "department", "--windows", str(bad))
    assert r.returncode == 2 and "row 1: the header needs the columns window,department" in r.stderr
    r = run_careterm("site", "report", "--db", "nosuchdialect://x")
    assert r.returncode == 2 and "--db" in r.stderr


def test_report_reads_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    open_db(url).dispose()  # what `site collect` makes before its first event
    assert "(no ratings in this period)" in report(url)
    assert report(url, "--format", "csv").startswith("window,count,score_1")
    create_engine(url).dispose()


def test_a_missing_database_file_is_refused_not_created(tmp_path: Path) -> None:
    """A mistyped --db made an empty database and a report of "no ratings"."""
    path = tmp_path / "typo.db"
    r = run_careterm("site", "report", "--db", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"no SQLite database at {path}" in r.stderr and "site collect" in r.stderr
    assert not path.exists()


@pytest.fixture
def hostile_db(tmp_path: Path) -> str:
    """A compromised pad's ratings: formulas, terminal escapes and a bidi override as ids."""
    url = f"sqlite:///{tmp_path}/hostile.db"
    engine = open_db(url)
    store(
        engine,
        [
            envelope(
                "pad-evil",
                i + 1,
                f"{DAY}T09:0{i}:00+08:00",
                rating(window, staff, 1, reason=reason),
            )
            for i, (window, staff, reason) in enumerate(
                [
                    ('=HYPERLINK("http://evil.example/","x")', "+1+1", "-2+3"),
                    ("@SUM(A1)", "E\x1b]0;pwned\x07\x1b[2J", "等候\r\n时间长"),
                    ("W\u202e10", "E1001", "\u2066ok\u2069"),
                ]
            )
        ],
    )
    engine.dispose()
    return url


def test_csv_cells_from_devices_never_start_a_formula(hostile_db: str) -> None:
    for by in ("window", "staff"):
        out = report(hostile_db, "--from", DAY, "--to", DAY, "--by", by, "--format", "csv")
        for row in rows(out):
            for col, value in row.items():
                assert not value.startswith(("=", "+", "-", "@")), (by, col, value)
        keys = {r[by] for r in rows(out)}
        if by == "window":  # the text is kept, marked as text for the spreadsheet
            assert '\'=HYPERLINK("http://evil.example/","x")' in keys and "'@SUM(A1)" in keys


def test_table_and_html_show_no_control_or_bidi_characters(hostile_db: str) -> None:
    for by in ("window", "staff"):
        table = report(hostile_db, "--from", DAY, "--to", DAY, "--by", by)
        html = report(hostile_db, "--from", DAY, "--to", DAY, "--by", by, "--format", "html")
        for out in (table, html):
            for bad in ("\x1b", "\x07", "\r", "\u202e", "\u2066"):
                assert bad not in out, (by, repr(bad))
        # one line per group: a CR or LF in a reason does not break the table's rows
        lines = table.splitlines()
        head = next(i for i, line in enumerate(lines) if line.startswith(by))
        assert lines[head + 4].startswith("-" * 10), lines[head : head + 5]


def test_a_stored_time_no_zone_can_convert_leaves_the_report_standing(db: str) -> None:
    """Rows stored before the collector refused such times (year 1 at +14:00, year 9999 at
    -14:00) made `site report` without dates crash: they now count on no day."""
    from sqlalchemy import update

    from central.db import ratings

    engine = open_db(db)
    with engine.begin() as conn:
        first, second = [r.event_id for r in conn.execute(ratings.select().limit(2))]
        conn.execute(
            update(ratings)
            .where(ratings.c.event_id == first)
            .values(ts="0001-01-01T00:00:00+14:00")
        )
        conn.execute(
            update(ratings)
            .where(ratings.c.event_id == second)
            .values(ts="9999-12-31T23:59:59-14:00")
        )
    engine.dispose()
    for zone in ("Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        assert "TOTAL" in report(db, "--timezone", zone)
