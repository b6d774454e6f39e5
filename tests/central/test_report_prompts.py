"""`site report` for prompted pads (SPEC 9.3): prompts, response rate, misuse, reason events,
the lowest-group callout, wording, time zones; every figure checked against hand-counted data
stored through the collector's own code."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from central.db import open_db
from central.report_model import build_report
from tests.central.report_data import envelope, prompt_closed, rating, reason, store
from tests.conftest import run_careterm

DAY = "2026-11-23"


def at(hh_mm: str, offset: str = "+08:00", day: str = DAY) -> str:
    return f"{day}T{hh_mm}:00{offset}"


def store_prompted(url: str) -> str:
    """Window W01 on a prompted pad, counted by hand:

    prompts: p1..p8 (8). Answered by a counted rating: p1 p2 p3 p4 p6 (5) -> 62.5 %.
    p5 expired (prompt event); p7 superseded; p8 taken by a too-fast press (misuse) and then
    expired: one prompt, not answered. p3 also got a second press (misuse, same id).
    A press with no prompt open (misuse, prompt null). Misuse: 3 of 8 ratings.
    Counted ratings: p1 4, p2 3, p3 1 (reason event 等候时间长), p4 1 (reason event: none
    given, although the rating itself still carries an old-style reason), p6 2 -> 2 of 5
    satisfied = 40 %. The misuse press of p8 has a reason event: never counted.
    """
    engine = open_db(url)
    d, w, s = "pad-w01", "W01", "E1001"
    r3 = envelope(d, 4, at("09:20"), rating(w, s, 1, prompt="p3", response_ms=2500))
    r4 = envelope(d, 7, at("09:40"), rating(w, s, 1, reason="其他", prompt="p4", response_ms=3000))
    fast = envelope(d, 11, at("10:10"), rating(w, s, 1, prompt="p8", misuse=True, response_ms=90))
    evs = [
        envelope(d, 1, at("09:00"), rating(w, s, 4, prompt="p1", response_ms=2000)),
        envelope(d, 2, at("09:05"), rating(w, s, 4, misuse=True)),  # no prompt open
        envelope(d, 3, at("09:10"), rating(w, s, 3, prompt="p2", response_ms=4000)),
        r3,
        envelope(d, 5, at("09:21"), reason(r3["id"], w, s, "等候时间长"), "reason"),
        envelope(d, 6, at("09:22"), rating(w, s, 4, prompt="p3", misuse=True)),  # second press
        r4,
        envelope(d, 8, at("09:41"), reason(r4["id"], w, s, None), "reason"),
        envelope(d, 9, at("09:50"), prompt_closed("p5", w, s, "expired", "A012"), "prompt"),
        envelope(d, 10, at("10:00"), rating(w, s, 2, prompt="p6", response_ms=1000)),
        fast,
        envelope(d, 12, at("10:11"), reason(fast["id"], w, s, "服务态度差"), "reason"),
        envelope(d, 13, at("10:12"), prompt_closed("p8", w, s), "prompt"),
        envelope(d, 14, at("10:20"), prompt_closed("p7", w, s, "superseded"), "prompt"),
    ]
    store(engine, evs)
    engine.dispose()
    return url


@pytest.fixture
def prompted_db(tmp_path: Path) -> str:
    return store_prompted(f"sqlite:///{tmp_path}/site.db")


def test_postgresql_gives_the_same_report(prompted_db: str, pg_url: str) -> None:
    store_prompted(pg_url)
    for by in ("window", "hour"):
        assert csv_rows(pg_url, "--by", by) == csv_rows(prompted_db, "--by", by)


def csv_rows(db: str, *args: str) -> dict[str, dict[str, str]]:
    r = run_careterm("site", "report", "--db", db, "--format", "csv", *args)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    return {next(iter(row.values())): row for row in rows}


def test_prompts_response_rate_and_misuse_of_a_prompted_pad(prompted_db: str) -> None:
    w1 = csv_rows(prompted_db)["W01"]
    assert (w1["count"], w1["misuse"], w1["rated"]) == ("8", "3", "5")
    assert [w1[f"score_{i}"] for i in range(1, 5)] == ["2", "1", "1", "1"]
    assert w1["satisfied_pct"] == "40.0"
    assert (w1["prompted"], w1["prompts"], w1["response_pct"]) == ("5", "8", "62.5")
    assert w1["misuse_pct"] == "37.5"
    # the reason event wins over the rating's own field; a misuse press's reason never counts
    assert w1["reasons"] == "等候时间长:1"
    assert w1["median_response_ms"] == "2500"  # 2000 4000 2500 3000 1000: misuse excluded


def test_each_prompt_counts_once_in_the_group_of_its_answer(prompted_db: str) -> None:
    by_hour = csv_rows(prompted_db, "--by", "hour")
    assert {h: (r["prompted"], r["prompts"]) for h, r in by_hour.items()} == {
        "9": ("4", "5"),  # p1 p2 p3 p4 answered, p5 expired
        "10": ("1", "3"),  # p6 answered; p8 (misuse, then expired) and p7 not
    }
    engine = open_db(prompted_db, create=False)
    report = build_report(engine, by="window")
    assert (report.total.prompts, report.total.prompted, report.total.response_pct) == (8, 5, 62.5)


def test_old_ratings_with_their_own_reason_and_orphan_reasons_still_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    old = envelope("pad-w02", 1, at("11:00"), rating("W02", "E2", 1, reason="业务不熟练"))
    orphan = envelope(
        "pad-w02",
        3,
        at("11:06"),
        reason("0193a1b2-ffff-7000-8000-00000000dead", "W02", "E2", "服务态度差"),
        "reason",
    )
    store(engine, [old, orphan])
    report = build_report(engine, by="window", day_from=DAY, day_to=DAY)
    (w2,) = report.groups
    assert dict(w2.reasons) == {"业务不熟练": 1, "服务态度差": 1}
    assert report.orphan_reasons == 1
    assert (w2.count, w2.prompts, w2.response_pct) == (1, 0, None)  # a free-mode pad
    table = run_careterm("site", "report", "--db", url).stdout
    assert "1 reason without its rating in the database" in table


def lowest_db(tmp_path: Path) -> str:
    """The issue's case: W05 at 57.1 % (7 ratings) and W07 at 50 % (2 ratings)."""
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    evs = []
    for i, score in enumerate([4, 4, 3, 4, 1, 2, 1]):
        evs.append(envelope("pad-w05", i + 1, at(f"09:{i:02d}"), rating("W05", "E5", score)))
    for i, score in enumerate([4, 1]):
        evs.append(envelope("pad-w07", i + 1, at(f"10:{i:02d}"), rating("W07", "E7", score)))
    for i in range(6):
        evs.append(envelope("pad-w01", i + 1, at(f"11:{i:02d}"), rating("W01", "E1", 4)))
    evs.append(envelope("pad-w08", 1, at("12:00"), rating("W08", "E8", 4, misuse=True)))
    store(engine, evs)
    engine.dispose()
    return url


def test_the_callout_names_the_truly_lowest_group_and_marks_few_ratings(tmp_path: Path) -> None:
    db = lowest_db(tmp_path)
    html = run_careterm("site", "report", "--db", db, "--format", "html").stdout
    callout = re.search(r"<p class='callout'>(.*?)</p>", html, re.S)
    assert callout, html
    text = callout.group(1)
    assert "Lowest satisfaction: W07 at 50.0% (2 ratings): few ratings" in text
    assert "Among groups with at least 5 ratings: W05 at 57.1% (7 ratings)" in text
    assert "fewer than 5 counted ratings is marked" in text  # how the callout chooses
    # every group is drawn: the small one marked, the one with only misuse listed
    assert html.count("few ratings</span>") == 1 and "n=2 · few ratings" in html
    assert "W08" in html and "no counted ratings" in html
    table = run_careterm("site", "report", "--db", db).stdout
    assert re.search(r"^W07 .* 50\.0%\*", table, re.M) and "* fewer than 5 counted" in table
    assert "Lowest satisfaction: W07" in table


def test_the_callout_names_a_large_group_alone_and_every_tied_group(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    evs = []
    for dev, win in (("pad-a", "W01"), ("pad-b", "W02")):
        for i, score in enumerate([4, 4, 1, 1, 1, 4]):
            evs.append(envelope(dev, i + 1, at(f"09:{i:02d}"), rating(win, None, score)))
    store(engine, evs)
    table = run_careterm("site", "report", "--db", url).stdout
    assert "Lowest satisfaction: W01 and W02 at 50.0% (6 ratings, 6 ratings)." in table
    assert "few ratings" not in table


def test_html_wording_legend_and_plurals(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    evs = [
        envelope("pad-w02", i + 1, at(f"09:{i:02d}"), rating("收费处 2号窗口 (医保)", None, s, 5))
        for i, s in enumerate([5, 4, 3, 2, 1])
    ]
    store(engine, evs)
    from sqlalchemy import insert

    from central.db import gaps

    with engine.begin() as conn:
        conn.execute(
            insert(gaps).values(
                device="pad-w02", site="main", first_seq=7, last_seq=9, detected_at=0.0
            )
        )
    html = run_careterm("site", "report", "--db", url, "--format", "html").stdout
    assert "at score 2" not in html
    assert "ratings at score 1: 20.0 % of counted" in html
    assert "1 open gap," in html and "1 gaps" not in html and "0 gaps with lost" in html
    table = run_careterm("site", "report", "--db", url).stdout
    assert "delivery: 1 open gap, 0 gaps with lost events (0 events)" in table
    # the score chart: its legend (score 1..5) and its labels fit inside the drawing
    svg = re.search(r'<svg viewBox="0 0 (\d+) (\d+)"[^>]*score distribution.*?</svg>', html, re.S)
    assert svg, html
    width = int(svg.group(1))
    legend = re.findall(r'<text x="([\d.]+)" y="[\d.]+" font-size="12">score (\d)</text>', svg[0])
    assert [s for _, s in legend] == ["1", "2", "3", "4", "5"]
    assert all(float(x) + 7 * 0.6 * 12 <= width for x, _ in legend)
    label = re.search(r'<text x="(\d+)" y="[\d.]+" font-size="14" text-anchor="end">收费处', svg[0])
    assert label and int(label.group(1)) >= 11 * 14  # right edge of the longest label: no clip


def test_a_pad_on_utc_lands_in_the_sites_hours_and_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    store(
        engine,
        [
            envelope("pad-utc", 1, at("01:15", "+00:00"), rating("W09", None, 4)),  # 09:15 here
            envelope("pad-ok", 1, at("09:30"), rating("W01", None, 3)),
            envelope("pad-utc", 2, at("16:30", "+00:00", "2026-11-22"), rating("W09", None, 4)),
        ],
    )
    by_hour = csv_rows(url, "--by", "hour", "--from", DAY, "--to", DAY)
    assert {h: r["count"] for h, r in by_hour.items()} == {"0": "1", "9": "2"}
    table = run_careterm("site", "report", "--db", url, "--from", DAY).stdout
    assert (
        "data: pad-utc: 2 events stamped +00:00, not +08:00 (Asia/Shanghai): the device's "
        "time zone is wrong" in table
    )
    assert "pad-ok" not in table.split("delivery:")[1]
    utc = csv_rows(url, "--by", "hour", "--timezone", "UTC")
    assert {h: r["count"] for h, r in utc.items()} == {"1": "2", "16": "1"}
    r = run_careterm("site", "report", "--db", url, "--timezone", "Beijing")
    assert r.returncode == 2 and "--timezone 'Beijing': not an IANA time zone" in r.stderr


def test_report_modules_import_without_a_cycle() -> None:
    """Queries and figures in report_model; report_html and report_text only render them."""
    code = (
        "import sys, central.report_html, central.report_text;"
        "print(sorted(m for m in sys.modules if m.startswith('central.report')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['central.report_html', 'central.report_model', 'central.report_text']"
    )


def test_a_five_key_pad_keeps_its_score_5_column_without_any_5(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/site.db"
    engine = open_db(url)
    store(engine, [envelope("pad-w02", 1, at("09:00"), rating("W02", None, 4, scale=5))])
    html = run_careterm("site", "report", "--db", url, "--format", "html").stdout
    assert "<th>score 5</th>" in html and ">score 5</text>" in html
    assert "two best scores of 5" in html
