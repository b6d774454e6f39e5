"""The pad in-process against a real mosquitto, keys typed on a pty keypad."""

from __future__ import annotations

import json
import time

import pytest

from drivers.card_reader.base import CardRead
from tests.conftest import wait_for
from tests.rating_pad.conftest import BASE, send_command

pytestmark = pytest.mark.broker


def test_prompted_one_rating_per_prompt(pad_rig) -> None:
    rig = pad_rig()
    rig.keys(b"4", handled=1)  # no prompt yet: ignored
    r = rig.cmd("prompt", ticket="B023")
    assert r["ok"] and r["result"]["state"] == "prompted" and r["result"]["window_s"] == 15
    rig.keys(b"3", handled=1)
    time.sleep(0.25)  # past the repeat guard, within the thank-you screen
    rig.keys(b"4", handled=1)  # second press on the same prompt: ignored
    (ev,) = rig.wait_events("rating", 1)
    assert ev["data"]["score"] == 3 and ev["data"]["prompt"] == r["result"]["prompt"]
    assert ev["data"]["staff"] == "E1024" and ev["data"]["misuse"] is False
    assert ev["data"]["response_ms"] >= 0 and ev["device"] == "pad-w03"
    r2 = rig.cmd("prompt")
    rig.keys(b"2", handled=1)
    ratings = rig.wait_events("rating", 2)
    assert [e["data"]["score"] for e in ratings] == [3, 2]
    assert ratings[1]["data"]["prompt"] == r2["result"]["prompt"]


def test_prompt_key_on_the_keypad_opens_a_prompt(pad_rig) -> None:
    rig = pad_rig()
    rig.keys(b"P", handled=1)
    assert rig.state() == "prompted"
    rig.keys(b"4", handled=1)
    assert rig.wait_events("rating", 1)[0]["data"]["prompt"]


def test_prompt_window_expires(pad_rig) -> None:
    rig = pad_rig(rating="prompt_window_s = 1")
    rig.cmd("prompt")
    time.sleep(1.3)
    rig.keys(b"4", handled=1)
    rig.cmd("prompt")
    rig.keys(b"3", handled=1)
    assert [e["data"]["score"] for e in rig.wait_events("rating", 1)] == [3]


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
    rig = pad_rig(rating='mode = "free"\ncooldown_s = 0')
    for _ in range(60):  # a held key auto-repeating every ~25 ms for 1.5 s
        rig.pty.write(b"4")
        time.sleep(0.025)
    # (slower repeats, 80..100 ms, are dropped by the machine: test_machine.py)
    time.sleep(0.5)
    rig.keys(b"3", handled=1)
    evs = rig.wait_events("rating", 2)
    assert [e["data"]["score"] for e in evs] == [4, 3]


def test_low_score_reason_by_key_and_alert_with_rating(pad_rig) -> None:
    rig = pad_rig()
    rig.cmd("prompt")
    rig.keys(b"1", handled=1)
    assert rig.state() == "reason"
    time.sleep(0.2)
    rig.keys(b"1", handled=1)  # the same key at once: a double press, ignored
    assert rig.state() == "reason"
    rig.keys(b"3", handled=1)  # key of score 3 picks reason 3
    rating = rig.wait_events("rating", 1)[0]
    (alert,) = rig.wait_events("alert", 1)
    assert rating["data"]["reason"] == "业务不熟练"
    assert alert["seq"] == rating["seq"] + 1
    assert alert["data"]["kind"] == "dissatisfied"
    assert alert["data"]["reason"] == "业务不熟练" and alert["data"]["staff"] == "E1024"
    assert alert["data"]["window"] == "W03" and alert["data"]["score"] == 1
    topics = [m.topic for m in rig.sub.messages]
    assert f"{BASE}/alerts/dissatisfied" in topics


def test_reason_timeout_sends_null_reason(pad_rig) -> None:
    rig = pad_rig(rating="reason_timeout_s = 1")
    rig.cmd("prompt")
    rig.keys(b"1", handled=1)
    rating = rig.wait_events("rating", 1, timeout=5)[0]
    alert = rig.wait_events("alert", 1)[0]
    assert rating["data"]["reason"] is None and alert["data"]["reason"] is None


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


def test_bad_staff_directory_keeps_the_last_good_one(pad_rig) -> None:
    rig = pad_rig()
    good = [{"staff": "E3000", "name": "赵六", "token": "d" * 32, "photo": None}]
    rig.sub.publish("careterm/main/staff", good, retain=True)
    wait_for(lambda: "E3000" in rig.service.machine.directory, 5)
    # terminal.documents: a document with any bad row is refused as a whole (SPEC 9.4).
    rig.sub.publish("careterm/main/staff", b"{not json", retain=True)
    rig.sub.publish(
        "careterm/main/staff",
        [{"name": "no number"}, {"staff": "E3001", "name": "钱七", "photo": 12}],
        retain=True,
    )
    rig.sub.publish("careterm/main/staff", [1, 2, 3], retain=True)
    wait_for(lambda: len(rig.sub.events("alert")) >= 3, 5, what="document alerts")
    assert {a["data"]["kind"] for a in rig.sub.events("alert")} == {"document"}
    assert set(rig.service.machine.directory) == {"E3000"}


def test_clerk_and_pause_survive_a_restart(pad_rig) -> None:
    rig = pad_rig()
    assert rig.cmd("pause")["ok"]
    rig.pad.stop()
    state = json.loads((rig.pad.cfg.data_dir / "pad_state.json").read_text())
    assert state["staff"]["staff"] == "E1024" and state["paused"] is True
    rig2 = pad_rig(sign_in=None)
    assert rig2.state() == "paused" and rig2.service.machine.staff.staff == "E1024"
    assert rig2.service.machine.staff.name == "王芳"


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
    assert [(e["type"], e["data"].get("reason")) for e in stored[-2:]] == [
        ("rating", None),
        ("alert", None),
    ]
