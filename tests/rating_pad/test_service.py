"""The pad in-process against a real mosquitto, keys typed on a pty keypad."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from drivers.card_reader.base import CardRead
from tests.conftest import wait_for
from tests.rating_pad.conftest import BASE, send_command

pytestmark = pytest.mark.broker


def test_prompted_one_counted_rating_per_prompt_and_misuse_kept(pad_rig) -> None:
    rig = pad_rig(rating="cooldown_s = 0")
    rig.keys(b"4", handled=1)  # no prompt yet: kept as misuse
    r = rig.cmd("prompt", ticket="B023")
    assert r["ok"] and r["result"]["state"] == "prompted" and r["result"]["window_s"] == 15
    assert r["result"]["ticket"] == "B023"
    rig.keys(b"3", handled=1)
    time.sleep(0.25)  # past the repeat guard, within the thank-you screen
    rig.keys(b"4", handled=1)  # second press on the same prompt: misuse
    evs = rig.wait_events("rating", 3)
    assert [(e["data"]["score"], e["data"]["misuse"], e["data"]["prompt"]) for e in evs] == [
        (4, True, None),
        (3, False, r["result"]["prompt"]),
        (4, True, r["result"]["prompt"]),
    ]
    ev = evs[1]
    assert ev["data"]["staff"] == "E1024" and ev["data"]["ticket"] == "B023"
    assert ev["data"]["response_ms"] >= 0 and ev["device"] == "pad-w03"
    r2 = rig.cmd("prompt")
    rig.keys(b"2", handled=1)
    ratings = [e for e in rig.wait_events("rating", 4) if not e["data"]["misuse"]]
    assert [e["data"]["score"] for e in ratings] == [3, 2]
    assert ratings[1]["data"]["prompt"] == r2["result"]["prompt"]
    assert ratings[1]["data"]["ticket"] is None


def test_prompt_key_then_a_score_at_once_is_misuse(pad_rig) -> None:
    rig = pad_rig(rating="min_response_ms = 700")
    rig.keys(b"P4", handled=2)  # the clerk rating themselves: P then 4 within 250 ms
    assert rig.state() == "prompted"  # still open for the patient
    fast = rig.wait_events("rating", 1)[0]["data"]
    assert fast["misuse"] is True and fast["prompt"] and fast["response_ms"] < 700
    time.sleep(0.8)
    rig.keys(b"3", handled=1)
    real = rig.wait_events("rating", 2)[1]["data"]
    assert real["misuse"] is False and real["prompt"] == fast["prompt"]


def test_prompt_window_expires_as_a_prompt_event(pad_rig) -> None:
    rig = pad_rig(rating="prompt_window_s = 1")
    r = rig.cmd("prompt", ticket="A012")
    (ev,) = rig.wait_events("prompt", 1, timeout=5)
    assert ev["data"] == {
        "prompt": r["result"]["prompt"],
        "ticket": "A012",
        "window": "W03",
        "staff": "E1024",
        "outcome": "expired",
    }
    rig.keys(b"4", handled=1)
    rig.cmd("prompt")
    rig.keys(b"3", handled=1)
    evs = rig.wait_events("rating", 2)
    assert [(e["data"]["score"], e["data"]["misuse"]) for e in evs] == [(4, True), (3, False)]


def test_free_mode_misuse_and_debounce(pad_rig) -> None:
    rig = pad_rig(rating='mode = "free"\ncooldown_s = 5')
    rig.keys(b"4", handled=1)
    rig.keys(b"444", handled=None)  # bounce in one burst: dropped by the keypad debounce
    time.sleep(0.05)
    rig.keys(b"4")  # bounce 50 ms later: dropped
    time.sleep(0.5)
    rig.keys(b"3", handled=1)  # a real second press within cooldown: misuse
    evs = rig.wait_events("rating", 2)
    time.sleep(0.3)
    evs = rig.events("rating")
    assert [(e["data"]["score"], e["data"]["misuse"]) for e in evs] == [(4, False), (3, True)]
    assert all(e["data"]["prompt"] is None for e in evs)


def test_stuck_key_gives_one_rating(pad_rig) -> None:
    """A held key auto-repeating every 25 ms for 1.5 s, as the keypad driver timestamps the
    presses (given here, so a loaded test machine cannot stretch the gaps past the repeat
    guard; the pty and debounce path is test_free_mode_misuse_and_debounce)."""
    rig = pad_rig(rating='mode = "free"\ncooldown_s = 0')
    t0 = rig.service.clock()
    before = rig.service.handled
    for i in range(60):
        rig.service.press("4", t0 + 0.025 * i)
    rig.service.press("3", t0 + 0.025 * 59 + 0.5)  # released; another key half a second later
    wait_for(lambda: rig.service.handled >= before + 61, 5, what="61 presses handled")
    rig.wait_events("rating", 2)
    time.sleep(0.3)
    assert [e["data"]["score"] for e in rig.events("rating")] == [4, 3]


def test_low_score_stored_and_alerted_at_the_press_reason_by_key_after(pad_rig) -> None:
    rig = pad_rig()
    rig.cmd("prompt")
    rig.keys(b"1", handled=1)
    assert rig.state() == "reason"
    rating = rig.wait_events("rating", 1)[0]  # before any reason
    (alert,) = rig.wait_events("alert", 1)
    assert rating["data"]["reason"] is None and rating["data"]["reason_asked"] is True
    assert alert["seq"] == rating["seq"] + 1
    assert alert["data"]["kind"] == "dissatisfied" and alert["data"]["rating"] == rating["id"]
    assert alert["data"]["reason"] is None and alert["data"]["staff"] == "E1024"
    assert alert["data"]["window"] == "W03" and alert["data"]["score"] == 1
    time.sleep(0.2)
    rig.keys(b"1", handled=1)  # the same key at once: a double press, ignored
    assert rig.state() == "reason"
    rig.keys(b"3", handled=1)  # key of score 3 picks reason 3
    (reason,) = rig.wait_events("reason", 1)
    assert reason["data"] == {
        "rating": rating["id"],
        "window": "W03",
        "staff": "E1024",
        "reason": "业务不熟练",
    }
    topics = [m.topic for m in rig.sub.messages]
    assert f"{BASE}/alerts/dissatisfied" in topics and f"{BASE}/events/reason" in topics


def test_reason_timeout_sends_null_reason(pad_rig) -> None:
    rig = pad_rig(rating="reason_timeout_s = 1")
    rig.cmd("prompt")
    rig.keys(b"1", handled=1)
    rating = rig.wait_events("rating", 1, timeout=5)[0]
    reason = rig.wait_events("reason", 1, timeout=5)[0]
    assert rating["data"]["reason"] is None and reason["data"]["reason"] is None
    assert reason["data"]["rating"] == rating["id"]


def test_staff_card_sign_in_out_and_pause_resume(pad_rig) -> None:
    rig = pad_rig(rating="staff_required = true", sign_in=None)
    assert rig.state() == "closed"
    assert not rig.cmd("prompt")["ok"]
    card = CardRead(kind="staff_card", token="b" * 32, masked="S****2000")
    rig.pad.on_card_read(card)
    rig.wait_events("staff", 1)
    rig.keys(b"S", handled=1)  # keypad pause key
    assert rig.cmd("prompt")["error"] == "cannot prompt: paused"
    r = rig.cmd("resume")
    assert r["ok"] and r["result"] == {"changed": True, "state": "idle"}
    assert rig.cmd("pause")["ok"]
    rig.pad.on_card_read(CardRead(kind="medical_card", token="c" * 32, masked="1234****"))
    rig.pad.on_card_read(card)  # the same clerk's card again: sign out
    evs = rig.wait_events("staff", 5)
    assert [(e["data"]["action"], e["data"]["staff"]) for e in evs] == [
        ("sign_in", "E2000"),
        ("pause", "E2000"),
        ("resume", "E2000"),
        ("pause", "E2000"),
        ("sign_out", "E2000"),
    ]
    assert rig.state() == "closed"


def test_staff_command_switches_clerk_and_ratings_follow(pad_rig) -> None:
    rig = pad_rig(rating='mode = "free"')
    r = rig.cmd("staff", action="sign_in", staff="E2000")
    assert r["ok"] and r["result"]["known"] is True and r["result"]["changed"] is True
    rig.keys(b"4", handled=1)
    assert rig.wait_events("rating", 1)[0]["data"]["staff"] == "E2000"
    bad = rig.cmd("staff", action="sign_out", staff="E1024")
    assert not bad["ok"] and "E2000 is on duty" in bad["error"]
    assert rig.cmd("staff", action="sign_out")["ok"]
    evs = rig.wait_events("staff", 4)
    assert [(e["data"]["action"], e["data"]["staff"]) for e in evs] == [
        ("sign_in", "E1024"),
        ("sign_out", "E1024"),
        ("sign_in", "E2000"),
        ("sign_out", "E2000"),
    ]


def test_malformed_and_unknown_commands_change_nothing(pad_rig) -> None:
    rig = pad_rig()
    cases = [
        ("staff", {"action": "dance", "staff": "E1"}),
        ("staff", {"action": "sign_in"}),
        ("staff", {"action": "sign_in", "staff": 1024}),
        ("staff", {"action": "sign_in", "staff": "x" * 200}),
        ("prompt", {"ticket": {"a": 1}}),
        ("explode", {}),
        ("print_test", {}),
    ]
    for name, body in cases:
        r = send_command(rig.sub, name, body)
        assert r["ok"] is False and r["error"], (name, body, r)
    # What the refusals say a pad takes is what it takes: not the kiosk's print_test.
    unknown = send_command(rig.sub, "explode", {})["error"]
    assert "print_test" not in unknown and "prompt" in unknown, unknown
    assert send_command(rig.sub, "print_test", {})["error"] == (
        "command 'print_test' is not supported by this device"
    )
    assert not rig.cmd("resend", **{"from": "a"})["ok"]
    assert rig.cmd("ping")["ok"]
    # No cid can be read: nothing to answer to (SPEC 9.4, terminal.payloads.Reply); ignored.
    rig.sub.publish(f"{BASE}/cmd/prompt", b"\xff not json")
    rig.sub.publish(f"{BASE}/cmd/prompt", {"no": "cid"})
    assert rig.cmd("ping")["ok"]
    assert rig.state() == "idle" and rig.pad.service.is_alive()
    time.sleep(0.3)
    assert not [r for r in rig.sub.payloads("/reply") if r.get("cid") is None]
    assert [e["type"] for e in rig.sub.events()] == ["staff"]


def test_bad_staff_directory_never_replaces_the_last_good_one(pad_rig) -> None:
    rig = pad_rig()
    # terminal.documents: a document with any bad row is refused as a whole (SPEC 9.4).
    rig.sub.publish("careterm/main/staff", b"{not json", retain=True)
    bad_rows = [{"name": "no number"}, {"staff": "E3000", "name": "赵六", "photo": 12}]
    rig.sub.publish("careterm/main/staff", bad_rows, retain=True)
    rig.sub.publish("careterm/main/staff", bad_rows, retain=True)  # the same again: no alert
    rig.sub.publish("careterm/main/staff", [1, 2, 3], retain=True)
    alerts = rig.wait_events("alert", 3)
    assert [(a["data"]["kind"], a["data"]["severity"], a["data"]["document"]) for a in alerts] == [
        ("document", "warning", "staff"),
        ("document", "warning", "staff"),
        ("document", "warning", "staff"),
    ]
    assert "not JSON" in alerts[0]["data"]["message"]
    assert "staff" in alerts[1]["data"]["fault"]
    assert f"{BASE}/alerts/document" in [m.topic for m in rig.sub.messages]
    assert set(rig.service.machine.directory) == {"E1024", "E2000"}
    good = [{"staff": "E3000", "name": "赵六", "token": "d" * 32, "photo": None}]
    rig.sub.publish("careterm/main/staff", good, retain=True)
    wait_for(lambda: set(rig.service.machine.directory) == {"E3000"}, 5, what="new directory")
    time.sleep(0.3)
    assert len(rig.events("alert")) == 3


def test_a_staff_directory_with_a_shared_card_or_a_bad_staff_number_is_refused(pad_rig) -> None:
    rig = pad_rig()
    shared = [  # one card for two clerks: its ratings would go to whichever comes first
        {"staff": "E1024", "name": "王芳", "token": "c" * 32, "photo": None},
        {"staff": "E2000", "name": "李雷", "token": "c" * 32, "photo": None},
    ]
    rig.sub.publish("careterm/main/staff", shared, retain=True)
    # a staff number the `staff` command refuses (terminal.payloads.staff_number, one rule)
    bad_number = "E\n2000\u0007"
    r = rig.cmd("staff", action="sign_in", staff=bad_number)
    assert r["ok"] is False and "staff number" in r["error"]
    bad = [{"staff": bad_number, "name": "李雷", "token": "d" * 32, "photo": None}]
    rig.sub.publish("careterm/main/staff", bad, retain=True)
    alerts = rig.wait_events("alert", 2)
    assert [(a["data"]["kind"], a["data"]["severity"], a["data"]["document"]) for a in alerts] == [
        ("document", "warning", "staff"),
        ("document", "warning", "staff"),
    ]
    assert "E1024 and E2000 have the same card token" in alerts[0]["data"]["fault"]
    assert "c" * 32 not in json.dumps(alerts)  # a card token is never sent
    assert "0.staff: not a staff number" in alerts[1]["data"]["fault"]
    directory = rig.service.machine.directory  # the last good one stays
    assert {s: c.token for s, c in directory.items()} == {"E1024": "a" * 32, "E2000": "b" * 32}
    assert [e["data"]["action"] for e in rig.events("staff")] == ["sign_in"]


def test_clerk_and_pause_survive_a_restart(pad_rig) -> None:
    rig = pad_rig()
    assert rig.cmd("pause")["ok"]
    rig.pad.stop()
    state = json.loads((rig.pad.cfg.data_dir / "pad_state.json").read_text())
    assert state["staff"]["staff"] == "E1024" and state["paused"] is True
    rig2 = pad_rig(sign_in=None)
    assert rig2.state() == "paused" and rig2.service.machine.staff.staff == "E1024"
    assert rig2.service.machine.staff.name == "王芳"


def test_a_pad_moved_to_another_window_starts_with_no_clerk(pad_rig) -> None:
    rig = pad_rig()
    rig.pad.stop()
    rig2 = pad_rig(sign_in=None, window="W05")
    assert rig2.service.machine.staff is None
    assert rig2.cmd("prompt", ticket="B024")["ok"]
    rig2.keys(b"3", handled=1)
    rating = rig2.wait_events("rating", 1)[-1]["data"]
    # Rated at W05 for nobody: the clerk of W03 is not credited with a window they never served.
    assert rating["window"] == "W05" and rating["staff"] is None


def test_a_pad_moved_by_a_state_file_older_than_the_window_field_starts_with_no_clerk(
    pad_rig,
) -> None:
    rig = pad_rig()
    rig.pad.stop()
    path = rig.pad.cfg.data_dir / "pad_state.json"
    state = json.loads(path.read_text())
    del state["window"]  # as an earlier version saved it: the outbox's staff event tells
    path.write_text(json.dumps(state))
    rig2 = pad_rig(sign_in=None, window="W05")
    assert rig2.service.machine.staff is None
    rig3 = pad_rig(sign_in=None, window="W05")  # and the same window again: nothing changes
    assert rig3.service.machine.staff is None


def test_keypad_unplugged_raises_one_buttons_alert(pad_rig) -> None:
    rig = pad_rig()
    rig.pty.close()  # the USB-serial keypad is pulled out
    alert = rig.wait_events("alert", 1)[0]
    assert alert["data"]["kind"] == "buttons" and alert["data"]["severity"] == "warning"
    assert alert["data"]["state"] == "absent"
    time.sleep(2.5)  # the driver keeps trying to reopen it: no more alerts
    # (the freed /dev/pts number may be reused by another pty meanwhile: the pad then sees a
    # keypad "back", an info alert; it never repeats the warning)
    assert [a["data"]["severity"] for a in rig.events("alert")][:2] in (
        ["warning"],
        ["warning", "info"],
    )
    assert rig.service.is_alive()


def test_staff_card_on_a_serial_reader_signs_in_and_out(pad_rig, tmp_path) -> None:
    from drivers.base import DeviceState
    from terminal.privacy import card_token
    from tests.conftest import Pty

    salt_file = tmp_path / "site.salt"
    salt_file.write_text("test-salt\n")
    reader = Pty()
    try:
        staff = [
            {
                "staff": "E1024",
                "name": "王芳",
                "title": "收费员",
                "photo": None,
                "token": card_token(b"test-salt", "staff_card", "1024"),
            }
        ]
        rig = pad_rig(
            staff=staff,
            sign_in=None,
            extra=f"""
[privacy]
salt_file = "{salt_file}"
[card_reader]
driver = "serial"
device = "{reader.path}"
""",
        )
        wait_for(lambda: rig.pad.card_reader.state == DeviceState.OK, 5, what="reader open")
        reader.write(b"S1024\r\n")  # the clerk's card
        ev = rig.wait_events("staff", 1)[0]
        assert ev["data"] == {"window": "W03", "action": "sign_in", "staff": "E1024"}
        reader.write(b"110101199003074258\r\n")  # a patient's ID card: ignored
        reader.write(b"S9999\r\n")  # a staff card nobody registered
        wait_for(
            lambda: rig.service.last_view.notice == "unknown_staff_card", 5, what="notice on screen"
        )
        time.sleep(1.1)  # the reader drops a repeat within 1 s
        reader.write(b"S1024\r\n")
        evs = rig.wait_events("staff", 2)
        assert [e["data"]["action"] for e in evs] == ["sign_in", "sign_out"]
        assert rig.state() == "closed"
        sent = b"".join(m.payload for m in rig.sub.messages)  # everything the pad published
        assert staff[0]["token"].encode() not in sent and b"S1024" not in sent
    finally:
        reader.close()


def test_stopping_during_the_reason_screen_keeps_the_rating(pad_rig) -> None:
    from terminal.outbox import Outbox, outbox_path

    rig = pad_rig()
    rig.cmd("prompt")
    rig.keys(b"1", handled=1)
    assert rig.state() == "reason"
    rig.pad.stop()  # e.g. systemd restarts the pad
    cfg = rig.pad.cfg
    ob = Outbox(outbox_path(cfg.data_dir), device=cfg.device.id, site=cfg.device.site)
    try:
        stored = [json.loads(e.payload) for e in ob.iter_all("all")]
    finally:
        ob.close()
    assert [(e["type"], e["data"].get("reason")) for e in stored[-3:]] == [
        ("rating", None),
        ("alert", None),
        ("reason", None),
    ]
    assert stored[-1]["data"]["rating"] == stored[-3]["id"]


def test_a_repeated_cid_gets_the_first_reply_and_opens_nothing_even_after_a_restart(
    pad_rig,
) -> None:
    rig = pad_rig()
    first = rig.cmd("prompt", cid="q-1", ticket="A7")
    assert first["ok"]
    rig.keys(b"4", handled=1)
    rig.wait_events("rating", 1)
    again = rig.cmd("prompt", cid="q-1", ticket="A7")  # QoS 1 redelivery
    assert again == first and rig.state() == "thanks"
    refused_pause = rig.cmd("pause")
    assert refused_pause["ok"]
    no = rig.cmd("prompt", cid="q-2")
    assert no["ok"] is False and no["error"] == "cannot prompt: paused"
    assert rig.cmd("resume")["ok"]
    assert rig.cmd("prompt", cid="q-2") == no  # the first reply again, even now
    rig.pad.stop()
    rig2 = pad_rig(sign_in=None)
    assert rig2.cmd("prompt", cid="q-1", ticket="A7") == first
    assert rig2.state() == "idle"
    time.sleep(0.3)
    assert rig2.events("prompt") == [] and rig2.events("rating") == []


def test_the_clerks_line_counts_today_and_shows_the_link_going_down(pad_rig, broker) -> None:
    rig = pad_rig()
    wait_for(lambda: rig.service.last_view.link == "online", 5, what="online")
    rig.cmd("prompt")
    rig.keys(b"4", handled=1)
    rig.keys(b"3", handled=1)  # a second press for the same prompt: misuse, not counted
    wait_for(lambda: rig.service.last_view.today == 1, 5, what="today's count")
    broker.kill()
    view = wait_for(
        lambda: rig.service.last_view.link == "offline" and rig.service.last_view,
        15,
        what="offline on the clerk's line",
    )
    assert view.today == 1
    time.sleep(0.2)
    rig.keys(b"P", handled=1)  # the clerk's prompt key, the patient rates: stored, not sent
    time.sleep(0.2)
    rig.keys(b"4", handled=1)
    view = wait_for(
        lambda: rig.service.last_view.waiting >= 1 and rig.service.last_view,
        5,
        what="the waiting event on the clerk's line",
    )
    assert view.today == 2 and view.link == "offline"


def test_a_press_goes_to_the_broker_before_the_screen_changes(pad_rig, broker, monkeypatch) -> None:
    """On a Pi the new screen costs more CPU than the publish: the view that follows a press is
    handed to the screen only once the press's event was written to the broker's socket (or
    the link is down, or SEND_FIRST_S passed: long here, so that the order is the point)."""
    from rating_pad import service as pad_service

    monkeypatch.setattr(pad_service, "SEND_FIRST_S", 10.0)
    rig = pad_rig(rating='mode = "free"\ncooldown_s = 0')
    link = rig.pad.uplink.link
    wait_for(link.connected.is_set, 5, what="online")
    thanks: list[int] = []  # what was handed to the socket when the thank-you screen came

    def view(v: Any) -> None:
        if v.state == "thanks":
            thanks.append(link._handed[1])

    rig.service.on_view(view)
    rig.keys(b"4", handled=1)
    (ev,) = rig.wait_events("rating", 1)
    wait_for(lambda: thanks, 5, what="the thank-you view")
    assert thanks[0] >= ev["seq"], (thanks, ev["seq"])  # published, then the screen changed
    wait_for(lambda: rig.service.last_view.state == "idle", 10, what="back to idle")
    broker.kill()
    wait_for(lambda: not link.connected.is_set(), 15, what="offline")
    thanks.clear()
    t0 = time.monotonic()
    rig.keys(b"3", handled=1)
    wait_for(lambda: thanks, 5, what="the thank-you view while offline")
    assert time.monotonic() - t0 < 5.0  # offline: the screen never waits for the link
