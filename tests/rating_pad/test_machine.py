"""The pure pad state machine with an injected clock: modes, misuse, prompts, reasons, staff."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rating_pad.machine import (
    REASON_GRACE_S,
    PadMachine,
    PadState,
    Record,
    Staff,
    moods,
)
from terminal.config import parse_config
from terminal.payloads import EVENT_DATA

CLERK = Staff(staff="E1024", name="王芳", title="收费员", token="tok-e1024")
OTHER = Staff(staff="E2000", name="李雷", title="挂号员", token="tok-e2000")
_ids = itertools.count(1)


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
    assert [r.data["action"] for r in stored(m.sign_in(CLERK, 0.0))] == ["sign_in"]
    return m


def stored(recs: list[Record]) -> list[Record]:
    """What the service does: give each record an event id, fill references, and (here) check
    the data against the contract's model of its event type."""
    for r in recs:
        data = r.resolve()
        EVENT_DATA[r.etype].model_validate(data)
        r.event_id = f"ev-{next(_ids)}"
    return recs


def ratings(recs: list[Record]) -> list[dict[str, Any]]:
    return [r.data for r in stored(recs) if r.etype == "rating"]


def types(recs: list[Record]) -> list[str]:
    return [r.etype for r in stored(recs)]


# -- opening and counting ------------------------------------------------------------------


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


def test_prompted_counts_one_rating_per_prompt_with_its_ticket() -> None:
    m = on_duty()
    m.prompt(10.0, ticket="B023", cid="c1")
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
        "reason_asked": False,
        "prompt": pid,
        "ticket": "B023",
        "misuse": False,
        "response_ms": 2300,
    }
    assert m.state == PadState.THANKS


def test_prompted_press_without_a_prompt_is_kept_as_misuse_once_per_cooldown() -> None:
    m = on_duty(cooldown_s=5)
    (r,) = ratings(m.key("4", 1.0))
    assert r["misuse"] is True and r["prompt"] is None and r["response_ms"] is None
    assert r["reason_asked"] is False and m.state == PadState.IDLE
    assert m.view(1.5).notice == "not_prompted"
    assert m.key("3", 3.0) == []  # within cooldown_s: a stuck or hammered key is one event
    assert len(ratings(m.key("3", 6.5))) == 1
    low = m.key("1", 20.0)
    assert types(low) == ["rating"]  # misuse: no alert, no reason question
    assert m.state == PadState.IDLE


def test_a_press_sooner_than_min_response_ms_is_misuse_and_the_prompt_stays_open() -> None:
    m = on_duty(min_response_ms=700)
    m.key("P", 0.0)  # the clerk's prompt key ...
    pid = m.prompt_id
    (fast,) = ratings(m.key("4", 0.25))  # ... then 4 within 250 ms
    assert fast["misuse"] is True and fast["prompt"] == pid and fast["response_ms"] == 250
    assert m.state == PadState.PROMPTED and m.prompt_id == pid
    (real,) = ratings(m.key("3", 2.0))  # the patient still rates
    assert real["misuse"] is False and real["prompt"] == pid and real["response_ms"] == 2000


def test_a_second_press_for_the_same_prompt_is_misuse() -> None:
    m = on_duty(thanks_s=3)
    m.prompt(0.0)
    pid = m.prompt_id
    (first,) = ratings(m.key("4", 2.0))
    (second,) = ratings(m.key("2", 3.0))  # during the thank-you
    assert first["misuse"] is False
    assert second["misuse"] is True and second["prompt"] == pid and second["response_ms"] == 3000
    assert m.key("1", 4.0) == []  # within cooldown_s of the last such press
    m.tick(10.0)
    (later,) = ratings(m.key("4", 10.5))  # back to idle: no prompt at all
    assert later["misuse"] is True and later["prompt"] is None


def test_prompt_window_expires_as_a_prompt_event() -> None:
    m = on_duty(prompt_window_s=15)
    m.prompt(0.0, ticket="A012")
    pid = m.prompt_id
    assert m.tick(14.9) == [] and m.state == PadState.PROMPTED
    (ev,) = stored(m.tick(15.0))
    assert ev.etype == "prompt" and ev.data == {
        "prompt": pid,
        "ticket": "A012",
        "window": "W03",
        "staff": "E1024",
        "outcome": "expired",
    }
    assert m.state == PadState.IDLE and m.prompt_id is None
    assert ratings(m.key("4", 15.5))[0]["misuse"] is True


def test_a_new_prompt_supersedes_the_open_one() -> None:
    m = on_duty()
    m.prompt(0.0, ticket="A1")
    first = m.prompt_id
    (ev,) = stored(m.prompt(1.0, ticket="A2"))
    assert ev.data["prompt"] == first and ev.data["outcome"] == "superseded"
    assert ev.data["ticket"] == "A1"
    assert ratings(m.key("4", 3.0))[0]["ticket"] == "A2"


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
    assert r["prompt"] and r["response_ms"] == 1500 and r["misuse"] is False


def test_key_repeat_and_stuck_key_give_one_rating() -> None:
    m = on_duty(mode="free", cooldown_s=0)
    out = []
    t = 50.0
    for _ in range(40):  # a key held down, auto-repeating every 90 ms for 3.6 s
        out += m.key("4", t)
        t += 0.09
    assert len(ratings(out)) == 1
    assert len(ratings(m.key("4", t + 0.5))) == 1  # released, pressed again: counts


# -- low scores: stored at the press, alert at once, reason after ----------------------------


def test_low_score_is_stored_at_the_press_with_the_alert_and_the_reason_follows() -> None:
    m = on_duty()
    m.prompt(0.0, ticket="B7")
    pid = m.prompt_id
    out = stored(m.key("1", 1.0))
    assert [r.etype for r in out] == ["rating", "alert"]
    rating, alert = out
    assert rating.data["reason"] is None and rating.data["reason_asked"] is True
    assert rating.data["prompt"] == pid and rating.data["misuse"] is False
    assert alert.alert_kind == "dissatisfied"
    assert {k: alert.data[k] for k in ("kind", "window", "staff", "score", "reason")} == {
        "kind": "dissatisfied",
        "window": "W03",
        "staff": "E1024",
        "score": 1,
        "reason": None,
    }
    assert alert.data["rating"] == rating.event_id and alert.data["ticket"] == "B7"
    assert m.state == PadState.REASON
    (reason,) = stored(m.key("2", 3.0))  # the key of score 2 picks reason 2
    assert reason.etype == "reason"
    assert reason.data == {
        "rating": rating.event_id,
        "window": "W03",
        "staff": "E1024",
        "reason": "服务态度差",
    }
    assert m.state == PadState.THANKS


def test_same_key_at_once_on_the_reason_screen_is_a_double_press() -> None:
    m = on_duty()
    m.prompt(0.0)
    stored(m.key("1", 1.0))
    assert m.key("1", 1.3) == [] and m.state == PadState.REASON
    (r,) = stored(m.key("2", 1.35))  # another key: at once
    assert r.data["reason"] == "服务态度差"


def test_a_second_rating_button_touched_with_a_low_score_picks_no_reason() -> None:
    """Two fingers (or a palm) on 不满意 and 满意: the low score counts, and the other touch,
    made on the rating screen, is not taken as a reason the patient never saw."""
    m = on_duty()
    m.prompt(0.0)
    assert types(m.touch(1, 1.0)) == ["rating", "alert"]
    for later in (0.02, 0.7, 3.0):  # the same touch, however late the core thread sees it
        assert m.touch(3, 1.0 + later) == [] and m.state == PadState.REASON
    (r,) = stored(m.choose_reason(1, 4.5))  # the patient's own choice on the reason screen
    assert r.data["reason"] == "服务态度差"


def test_reason_by_touch_and_grace_after_the_score() -> None:
    m = on_duty()
    m.prompt(0.0)
    stored(m.touch(1, 1.0))
    assert m.choose_reason(0, 1.0 + REASON_GRACE_S / 2) == []  # a double tap: ignored
    assert m.state == PadState.REASON
    (r,) = stored(m.choose_reason(3, 1.0 + REASON_GRACE_S + 0.1))
    assert r.data["reason"] == "其他"


def test_reason_timeout_sends_a_null_reason_event() -> None:
    m = on_duty(reason_timeout_s=10)
    m.prompt(0.0)
    rating = stored(m.key("1", 1.0))[0]
    assert m.tick(10.9) == []
    (r,) = stored(m.tick(11.0))
    assert r.etype == "reason" and r.data["reason"] is None
    assert r.data["rating"] == rating.event_id


def test_alert_threshold_two() -> None:
    m = on_duty(mode="free", alert_at_or_below=2, cooldown_s=0)
    assert types(m.key("2", 1.0)) == ["rating", "alert"]
    assert m.state == PadState.REASON
    assert types(m.tick(100.0)) == ["reason"]
    assert types(m.key("3", 200.0)) == ["rating"]


def test_misuse_low_score_raises_no_alert() -> None:
    m = on_duty(mode="free", cooldown_s=5)
    stored(m.key("4", 1.0))
    out = stored(m.key("1", 2.0))
    assert [r.etype for r in out] == ["rating"] and out[0].data["misuse"] is True


def test_pause_during_reason_sends_the_null_reason_first() -> None:
    m = on_duty()
    m.prompt(0.0)
    stored(m.key("1", 1.0))
    assert types(m.pause(2.0)) == ["reason", "staff"]


def test_flush_records_a_null_reason_and_keeps_open_prompts() -> None:
    m = on_duty()
    m.prompt(0.0)
    stored(m.key("1", 1.0))
    m.prompt(2.0)  # deferred
    out = stored(m.flush(3.0))
    assert [r.etype for r in out] == ["reason"] and out[0].data["reason"] is None
    assert m.flush(4.0) == [] and m.deferred is not None


# -- prompt ids are never mixed up -----------------------------------------------------------


def test_prompt_during_reason_opens_after_the_thank_you() -> None:
    m = on_duty(thanks_s=3)
    m.prompt(0.0)
    stored(m.key("1", 1.0))
    m.prompt(2.0)
    pid = m.asked.id if m.asked else None
    assert m.reply_for(m.asked)["deferred"] is True and m.state == PadState.REASON
    stored(m.key("1", 4.0))  # reason 1
    assert m.state == PadState.THANKS
    m.tick(7.0)
    assert m.state == PadState.PROMPTED and m.prompt_id == pid
    (r,) = ratings(m.key("4", 8.0))
    assert r["prompt"] == pid and r["response_ms"] == 1000  # asked when it opened


def test_the_issue_sequence_gives_every_rating_its_replys_prompt_and_no_phantom() -> None:
    """Prompt T2, score 1, prompt T3 during the reason (deferred), reason 2, prompt T4 during
    the thank-you: T3 is superseded, T4 opens at once, its rating carries T4, nothing opens
    afterwards."""
    m = on_duty(thanks_s=3, prompt_window_s=15)
    events: list[Record] = []

    def ask(t: float, ticket: str) -> str:
        events.extend(stored(m.prompt(t, ticket)))
        assert m.asked is not None
        return m.reply_for(m.asked)["prompt"]

    t2 = ask(0.0, "T2")
    events += stored(m.key("1", 2.0))
    t3 = ask(3.0, "T3")
    assert m.state == PadState.REASON and m.prompt_id is None
    events += stored(m.key("2", 4.0))
    assert m.state == PadState.THANKS
    t4 = ask(5.0, "T4")
    assert m.state == PadState.PROMPTED and m.prompt_id == t4
    events += stored(m.key("4", 7.0))
    for t in range(8, 60):
        events += stored(m.tick(float(t)))
    assert m.state == PadState.IDLE and m.prompt_id is None  # no phantom prompt
    summary = [
        (e.etype, e.data.get("prompt"), e.data.get("ticket"), e.data.get("outcome"))
        for e in events
        if e.etype in ("rating", "prompt")
    ]
    assert summary == [
        ("rating", t2, "T2", None),
        ("prompt", t3, "T3", "superseded"),
        ("rating", t4, "T4", None),
    ]
    assert len({t2, t3, t4}) == 3


def test_pause_and_sign_out_close_open_and_waiting_prompts_as_expired() -> None:
    m = on_duty()
    m.prompt(0.0)
    pid = m.prompt_id
    out = stored(m.key("S", 1.0))
    assert [(r.etype, r.data.get("outcome")) for r in out] == [
        ("prompt", "expired"),
        ("staff", None),
    ]
    assert out[0].data["prompt"] == pid
    stored(m.key("S", 2.0))  # resume
    m.prompt(3.0)
    stored(m.key("1", 4.0))
    m.prompt(5.0)  # deferred
    out = stored(m.sign_in(OTHER, 6.0))
    assert [r.etype for r in out] == ["reason", "prompt", "staff", "staff"]
    assert out[1].data["staff"] == "E1024"  # closed before the clerk changed


# -- staff -----------------------------------------------------------------------------------


def test_pause_and_resume_by_key_are_staff_events() -> None:
    m = on_duty()
    out = stored(m.key("S", 1.0))
    assert [r.data for r in out] == [{"window": "W03", "action": "pause", "staff": "E1024"}]
    assert m.state == PadState.PAUSED
    m.prompt(2.0)
    assert m.state == PadState.PAUSED and m.key("4", 2.5) == []
    out = m.key("S", 3.0)
    assert [r.data["action"] for r in out] == ["resume"] and m.state == PadState.IDLE


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


def test_unknown_staff_card_shows_a_notice_for_a_while() -> None:
    m = on_duty()
    assert m.staff_card("not-a-clerk", 10.0) == []
    assert m.view(11.0).notice == "unknown_staff_card"
    assert m.view(14.5).notice is None
    assert m.staff is not None and m.staff.staff == "E1024"


# -- restarts --------------------------------------------------------------------------------


def test_snapshot_restores_clerk_and_pause() -> None:
    m = on_duty()
    m.pause(1.0)
    snap = m.snapshot()
    assert snap["staff"] == {"staff": "E1024", "name": "王芳", "title": "收费员"}
    assert snap["paused"] is True and snap["closed"] is False
    m2 = machine()
    assert m2.restore(snap, 5.0, 1000.0) == []
    assert m2.state == PadState.PAUSED and m2.staff is not None and m2.staff.staff == "E1024"


def test_a_closed_window_stays_closed_after_a_restart() -> None:
    m = on_duty()
    m.sign_out(1.0)
    m2 = machine()
    m2.restore(m.snapshot(), 2.0, 1000.0)
    assert m2.state == PadState.CLOSED
    m3 = machine()
    m3.restore({}, 2.0, 1000.0)
    assert m3.state == PadState.IDLE


def test_a_prompt_open_at_a_restart_opens_again_within_its_window() -> None:
    m = on_duty(prompt_window_s=15)
    m.prompt(100.0, ticket="C3", cid="cid-1")
    pid = m.prompt_id
    snap = m.snapshot(wall_offset=1_000_000.0)  # opened at wall 1,000,100
    m2 = machine(prompt_window_s=15)
    assert m2.restore(snap, 5.0, 1_000_104.0) == []  # 4 s later, in a new process
    assert m2.state == PadState.PROMPTED and m2.prompt_id == pid
    assert m2.cids == m.cids
    (r,) = ratings(m2.key("4", 6.0))
    assert r["prompt"] == pid and r["ticket"] == "C3" and r["response_ms"] == 5000
    m3 = machine(prompt_window_s=15)
    (ev,) = stored(m3.restore(snap, 5.0, 1_000_200.0))  # after its window: expired
    assert ev.data["prompt"] == pid and ev.data["outcome"] == "expired"
    assert m3.state == PadState.IDLE
    m4 = machine(prompt_window_s=15)  # the outbox already holds the rating that closed it
    assert m4.restore(snap, 5.0, 1_000_104.0, closed_prompts={pid}) == []
    assert m4.state == PadState.IDLE


def test_a_reason_asked_at_a_restart_is_recorded_as_not_answered() -> None:
    m = on_duty()
    m.prompt(0.0)
    rating = stored(m.key("1", 1.0))[0]
    m.prompt(2.0)
    deferred = m.deferred.id if m.deferred else None
    snap = m.snapshot()
    assert snap["reason_for"] == {"rating": rating.event_id, "staff": "E1024"}
    m2 = machine()
    (ev,) = stored(m2.restore(snap, 0.0, 20.0))
    assert ev.data == {
        "rating": rating.event_id,
        "window": "W03",
        "staff": "E1024",
        "reason": None,
    }
    assert m2.state == PadState.PROMPTED and m2.prompt_id == deferred  # a full window now
    m3 = machine()  # the outbox shows the reason stored before the kill
    assert types(m3.restore(snap, 0.0, 20.0, reasons_done={rating.event_id})) == []
    m4 = machine()  # killed before the snapshot was saved: the outbox names the rating
    out = stored(m4.restore({}, 0.0, 50.0, unanswered=[("ev-x", "E1024")]))
    assert [(r.etype, r.data["rating"]) for r in out] == [("reason", "ev-x")]


def test_a_prompt_waiting_behind_a_reason_expires_when_the_pad_was_down_too_long() -> None:
    """A power cut during the reason question with the next ticket waiting: back after it
    could ever have been answered (reason_timeout_s + thanks_s + prompt_window_s), the waiting
    prompt is recorded expired, not opened for whoever stands at the window now."""
    m = on_duty()  # reason_timeout_s 10, thanks_s 3, prompt_window_s 15: 28 s at most
    m.prompt(0.0)
    stored(m.key("1", 1.0))
    m.prompt(2.0, ticket="A2")
    waiting = m.deferred.id if m.deferred else None
    snap = m.snapshot(wall_offset=1.9e9)
    m2 = machine()
    out = stored(m2.restore(snap, 5.0, 1.9e9 + 2.0 + 7200))  # two hours later
    assert [(r.etype, r.data.get("outcome")) for r in out] == [
        ("reason", None),
        ("prompt", "expired"),
    ]
    assert out[1].data["prompt"] == waiting and out[1].data["ticket"] == "A2"
    assert m2.state == PadState.IDLE and m2.open is None
    m3 = machine()  # back within the bound: it opens, and its wait survives the next restart
    stored(m3.restore(snap, 5.0, 1.9e9 + 2.0 + 20))
    assert m3.prompt_id == waiting
    again = m3.snapshot(wall_offset=1.9e9 + 17.0)  # t 5.0 is wall 1.9e9 + 22
    assert again["open"]["asked"] == 1.9e9 + 2.0


# -- labels and faces ------------------------------------------------------------------------


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


def test_view_uses_english_builtins_for_every_builtin_label() -> None:
    v = on_duty().view(0.0)
    assert v.labels_en == ["Dissatisfied", "Fairly satisfied", "Satisfied", "Very satisfied"]
    assert v.reasons_en[0] == "Long wait" and v.language == "zh"
    national = machine(labels=["非常不满意", "不满意", "基本满意", "满意", "非常满意"])
    assert national.labels_en[0] == "Very dissatisfied"
    assert all(en != zh for en, zh in zip(national.labels_en, national.labels, strict=True))


def test_the_middle_of_the_scale_is_a_neutral_face() -> None:
    assert moods(["不满意", "基本满意", "满意", "非常满意"]) == [-0.7, 0.0, 0.6, 1.0]
    assert moods(["很不满意", "不满意", "一般", "满意", "非常满意"])[2] == 0.0
    assert moods(["a", "b", "c"]) == [-1.0, 0.0, 1.0]
    assert moods(["a", "b", "c", "d"])[1] == 0.0  # as 基本满意 on the common four-key scale


def test_fast_presses_of_different_keys_are_not_repeats() -> None:
    m = on_duty(mode="free", cooldown_s=0, alert_at_or_below=0)
    out = []
    for i in range(12):  # 1,2,3,4,1,2,... every 30 ms: each key again after 120 ms
        out += m.key("1234"[i % 4], 10.0 + 0.03 * i)
    assert len(ratings(out)) == 12


# -- trend alerts (careterm extension) -------------------------------------------------------


def test_rising_share_of_low_scores_raises_one_critical_alert() -> None:
    m = on_duty(mode="free", cooldown_s=0, trend_window=4, trend_share=0.5, reason_timeout_s=1)
    t = 10.0
    kinds: list[tuple[str, str]] = []

    def rate(key: str) -> None:
        nonlocal t
        t += 5
        recs = stored(m.key(key, t) + m.tick(t + 2))  # low scores: the reason times out
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
    stored(m.key("1", 10.0) + m.tick(12.0))
    out = stored(m.key("1", 20.0))
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
        recs = stored(plain.key("1" if i % 2 else "2", 10.0 + 5 * i) + plain.tick(12.0 + 5 * i))
        assert all(r.data.get("severity") != "critical" for r in recs if r.etype == "alert")
