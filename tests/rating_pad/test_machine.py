"""The pure pad state machine with an injected clock: modes, reasons, staff, pause, repeats."""

from __future__ import annotations

from typing import Any

import pytest

from rating_pad.machine import REASON_GRACE_S, PadMachine, PadState, Record, Staff
from terminal.config import parse_config

CLERK = Staff(staff="E1024", name="王芳", title="收费员", token="tok-e1024")
OTHER = Staff(staff="E2000", name="李雷", title="挂号员", token="tok-e2000")


def machine(**rating: Any) -> PadMachine:
    cfg = parse_config(
        {
            "device": {"id": "pad-w03", "role": "rating_pad", "site": "main"},
            "window": {"id": "W03", "name": "收费处 3号窗口"},
            "rating": rating,
        }
    )
    m = PadMachine(cfg)
    m.set_directory([CLERK, OTHER])
    return m


def on_duty(**rating: Any) -> PadMachine:
    m = machine(**rating)
    assert [r.data["action"] for r in m.sign_in(CLERK, 0.0)] == ["sign_in"]
    return m


def ratings(recs: list[Record]) -> list[dict[str, Any]]:
    return [r.data for r in recs if r.etype == "rating"]


def test_staff_required_starts_closed_and_ignores_presses_until_a_clerk_signs_in() -> None:
    m = machine(mode="free", staff_required=True)
    assert m.state == PadState.CLOSED
    assert m.key("4", 1.0) == []
    assert m.prompt(2.0) == [] and m.state == PadState.CLOSED


def test_by_default_a_window_without_clerk_is_open_until_a_sign_out() -> None:
    m = machine(mode="free")
    assert m.state == PadState.IDLE
    (r,) = ratings(m.key("3", 1.0))
    assert r["staff"] is None and r["score"] == 3
    assert m.sign_out(2.0) == [] and m.state == PadState.THANKS  # nobody to sign out
    m.sign_in(CLERK, 3.0)
    assert [r.data["action"] for r in m.sign_out(4.0)] == ["sign_out"]
    assert m.state == PadState.CLOSED and m.key("4", 10.0) == []


def test_prompted_press_without_prompt_is_ignored() -> None:
    m = on_duty()
    assert m.key("4", 1.0) == []
    assert m.state == PadState.IDLE


def test_prompted_counts_one_rating_per_prompt() -> None:
    m = on_duty()
    m.prompt(10.0)
    pid = m.prompt_id
    assert m.state == PadState.PROMPTED and pid
    (r,) = ratings(m.key("4", 12.3))
    assert r == {
        "window": "W03",
        "staff": "E1024",
        "score": 4,
        "scale": 4,
        "label": "非常满意",
        "reason": None,
        "prompt": pid,
        "misuse": False,
        "response_ms": 2300,
    }
    assert m.state == PadState.THANKS
    assert m.key("3", 13.0) == [] and m.key("2", 20.0) == []


def test_prompt_window_expires() -> None:
    m = on_duty(prompt_window_s=15)
    m.prompt(0.0)
    assert m.tick(14.9) == [] and m.state == PadState.PROMPTED
    m.tick(15.0)
    assert m.state == PadState.IDLE and m.prompt_id is None
    assert m.key("4", 15.5) == []


def test_free_mode_presses_within_cooldown_are_kept_as_misuse() -> None:
    m = on_duty(mode="free", cooldown_s=5)
    (a,) = ratings(m.key("4", 100.0))
    (b,) = ratings(m.key("3", 102.0))
    (c,) = ratings(m.key("4", 104.0))
    (d,) = ratings(m.key("4", 110.0))
    assert [a["misuse"], b["misuse"], c["misuse"], d["misuse"]] == [False, True, True, False]
    assert a["prompt"] is None and a["response_ms"] is None


def test_free_mode_uses_an_open_prompt() -> None:
    m = on_duty(mode="free")
    m.prompt(1.0)
    (r,) = ratings(m.key("3", 2.5))
    assert r["prompt"] and r["response_ms"] == 1500


def test_key_repeat_and_stuck_key_give_one_rating() -> None:
    m = on_duty(mode="free", cooldown_s=0)
    out = []
    t = 50.0
    for _ in range(40):  # a key held down, auto-repeating every 90 ms for 3.6 s
        out += m.key("4", t)
        t += 0.09
    assert len(ratings(out)) == 1
    assert len(ratings(m.key("4", t + 0.5))) == 1  # released, pressed again: counts


def test_low_score_asks_a_reason_and_key_n_picks_reason_n() -> None:
    m = on_duty()
    m.prompt(0.0)
    assert m.key("1", 1.0) == []
    assert m.state == PadState.REASON
    out = m.key("2", 3.0)
    assert [r.etype for r in out] == ["rating", "alert"]
    rating, alert = out
    assert rating.data["reason"] == "服务态度差" and rating.data["score"] == 1
    assert alert.alert_kind == "dissatisfied"
    assert alert.data["kind"] == "dissatisfied"
    assert {k: alert.data[k] for k in ("window", "staff", "score", "reason")} == {
        "window": "W03",
        "staff": "E1024",
        "score": 1,
        "reason": "服务态度差",
    }
    assert m.state == PadState.THANKS


def test_same_key_at_once_on_the_reason_screen_is_a_double_press() -> None:
    m = on_duty()
    m.prompt(0.0)
    m.key("1", 1.0)
    assert m.key("1", 1.3) == [] and m.state == PadState.REASON
    assert ratings(m.key("2", 1.35))[0]["reason"] == "服务态度差"  # another key: at once


def test_reason_by_touch_and_grace_after_the_score() -> None:
    m = on_duty()
    m.prompt(0.0)
    m.touch(1, 1.0)
    assert m.choose_reason(0, 1.0 + REASON_GRACE_S / 2) == []  # a double tap: ignored
    assert m.state == PadState.REASON
    out = m.choose_reason(3, 1.0 + REASON_GRACE_S + 0.1)
    assert ratings(out)[0]["reason"] == "其他"


def test_reason_timeout_sends_null_reason_with_the_alert() -> None:
    m = on_duty(reason_timeout_s=10)
    m.prompt(0.0)
    m.key("1", 1.0)
    assert m.tick(10.9) == []
    out = m.tick(11.0)
    assert [r.etype for r in out] == ["rating", "alert"]
    assert out[0].data["reason"] is None and out[1].data["reason"] is None


def test_alert_threshold_two() -> None:
    m = on_duty(mode="free", alert_at_or_below=2, cooldown_s=0)
    m.key("2", 1.0)
    assert m.state == PadState.REASON
    out = m.tick(100.0)
    assert [r.etype for r in out] == ["rating", "alert"]
    assert [r.etype for r in m.key("3", 200.0)] == ["rating"]


def test_misuse_low_score_raises_no_alert() -> None:
    m = on_duty(mode="free", cooldown_s=5)
    m.key("4", 1.0)
    out = m.key("1", 2.0)
    assert [r.etype for r in out] == ["rating"] and out[0].data["misuse"] is True


def test_prompt_during_reason_opens_after_the_thank_you() -> None:
    m = on_duty(thanks_s=3)
    m.prompt(0.0)
    m.key("1", 1.0)
    m.prompt(2.0)
    pid = m.deferred_prompt
    assert pid and m.state == PadState.REASON
    m.key("1", 4.0)  # reason 1
    assert m.state == PadState.THANKS
    m.tick(7.0)
    assert m.state == PadState.PROMPTED and m.prompt_id == pid
    assert ratings(m.key("4", 8.0))[0]["prompt"] == pid


def test_pause_and_resume_by_key_are_staff_events() -> None:
    m = on_duty()
    out = m.key("S", 1.0)
    assert out == [Record("staff", {"window": "W03", "action": "pause", "staff": "E1024"})]
    assert m.state == PadState.PAUSED
    m.prompt(2.0)
    assert m.state == PadState.PAUSED and m.key("4", 2.5) == []
    out = m.key("S", 3.0)
    assert [r.data["action"] for r in out] == ["resume"] and m.state == PadState.IDLE


def test_pause_during_reason_sends_the_rating_first() -> None:
    m = on_duty()
    m.prompt(0.0)
    m.key("1", 1.0)
    out = m.pause(2.0)
    assert [r.etype for r in out] == ["rating", "alert", "staff"]


def test_staff_card_signs_in_switches_and_signs_out() -> None:
    m = machine(staff_required=True)
    assert [r.data for r in m.staff_card("tok-e1024", 1.0)] == [
        {"window": "W03", "action": "sign_in", "staff": "E1024"}
    ]
    out = m.staff_card("tok-e2000", 2.0)
    assert [(r.data["action"], r.data["staff"]) for r in out] == [
        ("sign_out", "E1024"),
        ("sign_in", "E2000"),
    ]
    out = m.staff_card("tok-e2000", 3.0)
    assert [(r.data["action"], r.data["staff"]) for r in out] == [("sign_out", "E2000")]
    assert m.state == PadState.CLOSED
    assert m.staff_card("unknown-token", 4.0) == [] and m.state == PadState.CLOSED


def test_ratings_carry_the_clerk_on_duty() -> None:
    m = machine(mode="free", cooldown_s=0)
    m.sign_in(OTHER, 0.0)
    assert ratings(m.key("3", 1.0))[0]["staff"] == "E2000"


def test_snapshot_restores_clerk_and_pause() -> None:
    m = on_duty()
    m.pause(1.0)
    snap = m.snapshot()
    assert snap == {
        "staff": {"staff": "E1024", "name": "王芳", "title": "收费员"},
        "paused": True,
        "closed": False,
    }
    m2 = machine()
    m2.restore(snap, 5.0)
    assert m2.state == PadState.PAUSED and m2.staff is not None and m2.staff.staff == "E1024"


@pytest.mark.parametrize("labels", [["差", "中", "好"], ["1", "2", "3", "4", "5"]])
def test_three_and_five_key_scales(labels: list[str]) -> None:
    keys = {str(i + 1): i + 1 for i in range(len(labels))}
    cfg = parse_config(
        {
            "device": {"id": "p", "role": "rating_pad", "site": "main"},
            "rating": {"labels": labels, "mode": "free", "reasons": ["a", "b", "c", "d", "e"]},
            "buttons": {"keys": keys},
        }
    )
    m = PadMachine(cfg)
    m.sign_in(CLERK, 0.0)
    (r,) = ratings(m.key(str(len(labels)), 1.0))
    assert r["scale"] == len(labels) and r["label"] == labels[-1]
    assert m.key("9", 2.0) == []


def test_view_uses_english_builtins() -> None:
    v = on_duty().view(0.0)
    assert v.labels_en == ["Dissatisfied", "Acceptable", "Satisfied", "Very satisfied"]
    assert v.reasons_en[0] == "Long wait" and v.language == "zh"


def test_a_closed_window_stays_closed_after_a_restart() -> None:
    m = on_duty()
    m.sign_out(1.0)
    m2 = machine()
    m2.restore(m.snapshot(), 2.0)
    assert m2.state == PadState.CLOSED
    m3 = machine()
    m3.restore({}, 2.0)
    assert m3.state == PadState.IDLE


def test_unknown_staff_card_shows_a_notice_for_a_while() -> None:
    m = on_duty()
    assert m.staff_card("not-a-clerk", 10.0) == []
    assert m.view(11.0).notice == "unknown_staff_card"
    assert m.view(14.5).notice is None
    assert m.staff is not None and m.staff.staff == "E1024"


def test_flush_records_a_rating_waiting_for_its_reason() -> None:
    m = on_duty()
    m.prompt(0.0)
    m.key("1", 1.0)
    out = m.flush(2.0)
    assert [r.etype for r in out] == ["rating", "alert"] and out[0].data["reason"] is None
    assert m.flush(3.0) == []


def test_fast_presses_of_different_keys_are_not_repeats() -> None:
    m = on_duty(mode="free", cooldown_s=0, alert_at_or_below=0)
    out = []
    for i in range(12):  # 1,2,3,4,1,2,... every 30 ms: each key again after 120 ms
        out += m.key("1234"[i % 4], 10.0 + 0.03 * i)
    assert len(ratings(out)) == 12


def test_rising_share_of_low_scores_raises_one_critical_alert() -> None:
    m = on_duty(mode="free", cooldown_s=0, trend_window=4, trend_share=0.5, reason_timeout_s=1)
    t = 10.0
    kinds: list[tuple[str, str]] = []

    def rate(key: str) -> None:
        nonlocal t
        t += 5
        recs = m.key(key, t) + m.tick(t + 2)  # low scores: the reason times out
        kinds.extend((r.etype, r.data.get("severity", "")) for r in recs if r.etype == "alert")

    for k in "441":
        rate(k)
    assert kinds == [("alert", "warning")]  # 1 of 3: not yet a trend
    rate("1")  # 2 of the last 4
    assert kinds[-1] == ("alert", "critical")
    crit = [k for k in kinds if k[1] == "critical"]
    rate("1")  # still high: no second critical
    assert [k for k in kinds if k[1] == "critical"] == crit
    for k in "4444":
        rate(k)  # share falls: re-armed
    rate("1")
    rate("1")
    assert len([k for k in kinds if k[1] == "critical"]) == 2


def test_trend_alert_details_and_off_by_default() -> None:
    m = on_duty(mode="free", cooldown_s=0, trend_window=2, trend_share=1.0, reason_timeout_s=1)
    m.key("1", 10.0)
    m.tick(12.0)
    m.key("1", 20.0)
    out = m.tick(22.0)
    crit = [r.data for r in out if r.etype == "alert" and r.data["severity"] == "critical"]
    assert crit == [
        {
            "kind": "dissatisfied",
            "severity": "critical",
            "message": "收费处 3号窗口: 2 of the last 2 ratings were 不满意 or worse",
            "window": "W03",
            "staff": "E1024",
            "score": None,
            "reason": None,
            "trend": {"window": 2, "low": 2, "share": 1.0},
        }
    ]
    plain = on_duty(mode="free", cooldown_s=0, reason_timeout_s=1)
    for i in range(20):
        plain.key("1" if i % 2 else "2", 10.0 + 5 * i)
        assert all(
            r.data.get("severity") != "critical"
            for r in plain.tick(12.0 + 5 * i)
            if r.etype == "alert"
        )
