"""The figures come from the collector's tables (`ratings`, `reasons`, `prompts`), never from
parsing envelopes; they say what the events say, whatever order the events were stored in
(separate batches, as two collectors or a resend give them)."""

from __future__ import annotations

from pathlib import Path

from central.db import open_db
from central.report_model import build_report
from tests.central.report_data import envelope, prompt_closed, rating, reason, store

DAY = "2026-11-23"


def at(hh_mm: str) -> str:
    return f"{DAY}T{hh_mm}:00+08:00"


def test_a_reason_stored_before_its_rating_is_still_its_reason(tmp_path: Path) -> None:
    engine = open_db(f"sqlite:///{tmp_path}/site.db")
    asked = envelope("pad-a", 1, at("09:00"), rating("W01", "E1", 1, reason_asked=True))
    own = envelope("pad-a", 3, at("09:10"), rating("W01", "E1", 1, reason="其他"))
    # Each reason in an earlier batch than its rating.
    store(
        engine,
        [
            envelope(
                "pad-a", 2, at("09:01"), reason(asked["id"], "W01", "E1", "等候时间长"), "reason"
            )
        ],
    )
    store(
        engine,
        [envelope("pad-a", 4, at("09:11"), reason(own["id"], "W01", "E1", "服务态度差"), "reason")],
    )
    store(engine, [asked])
    store(engine, [own])
    (w1,) = build_report(engine, by="window").groups
    # The reason event wins over the rating's own field, in every order.
    assert dict(w1.reasons) == {"等候时间长": 1, "服务态度差": 1}
    assert build_report(engine, by="window").orphan_reasons == 0


def test_a_reason_naming_another_devices_rating_is_never_that_ratings(tmp_path: Path) -> None:
    engine = open_db(f"sqlite:///{tmp_path}/site.db")
    theirs = envelope("pad-b", 1, at("10:00"), rating("W02", "E2", 1, reason_asked=True))
    forged = envelope(
        "pad-a", 1, at("10:01"), reason(theirs["id"], "W01", "E1", "服务态度差"), "reason"
    )
    store(engine, [theirs, forged])
    report = build_report(engine, by="window")
    groups = {g.key: g for g in report.groups}
    assert dict(groups["W02"].reasons) == {}  # pad-b's rating keeps no reason from pad-a
    assert dict(groups["W01"].reasons) == {"服务态度差": 1}  # counted where it was said
    assert report.orphan_reasons == 1


def test_events_whose_data_is_not_valid_are_stored_but_never_counted(tmp_path: Path) -> None:
    engine = open_db(f"sqlite:///{tmp_path}/site.db")
    bad = rating("W01", "E1", 4, prompt="p3")
    bad["score"] = "four"
    good = rating("W01", "E1", 4, prompt="p1", response_ms=2000)
    store(
        engine,
        [
            envelope("pad-a", 1, at("11:00"), good),
            envelope("pad-a", 2, at("11:05"), bad),
            envelope("pad-a", 3, at("11:09"), prompt_closed("p2", "W01", "E1"), "prompt"),
        ],
    )
    (w1,) = build_report(engine, by="window").groups
    assert (w1.count, w1.rated, w1.prompts, w1.prompted) == (1, 1, 2, 1)
