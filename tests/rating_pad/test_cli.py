"""`careterm pad --headless` as a real process: pty keypad, real broker, commands, SIGTERM."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import careterm_cmd, run_careterm, wait_for
from tests.rating_pad.conftest import BASE, STAFF, send_command, wait_subscribed


def test_pad_rejects_a_kiosk_config(config_writer) -> None:
    path = config_writer(role="kiosk")
    r = run_careterm("pad", "--headless", "--config", str(path))
    assert r.returncode == 2
    assert "device.role" in r.stderr and "Traceback" not in r.stderr


def test_pad_bad_rating_key_names_the_key(config_writer) -> None:
    path = config_writer(extra='[rating]\nlabels_en = ["a"]\n')
    r = run_careterm("pad", "--headless", "--config", str(path))
    assert r.returncode == 2 and "rating.labels_en" in r.stderr


@pytest.mark.broker
@pytest.mark.slow
def test_headless_pad_end_to_end(broker, pty, config_writer, subscriber_factory, processes) -> None:
    path = config_writer(
        broker_url=broker.url,
        extra=f"""
[buttons]
driver = "serial"
device = "{pty.path}"
[rating]
reason_timeout_s = 2
staff_required = true
min_response_ms = 0
voice = false
""",
    )
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    sub.publish("careterm/main/staff", STAFF, retain=True)
    log = path.with_suffix(".log")
    proc = processes.start(careterm_cmd("pad", "--headless", "--config", str(path)), log=log)
    try:
        wait_subscribed(sub)
        r = send_command(sub, "prompt", {})
        assert r == {
            "cid": r["cid"],
            "ok": False,
            "error": "cannot prompt: closed: no clerk is signed in",
        }
        assert send_command(sub, "staff", {"action": "sign_in", "staff": "E1024"})["ok"]
        time.sleep(1.2)  # the keypad port opens within a second of start
        r = send_command(sub, "prompt", {"ticket": "B023"})
        assert r["ok"] and r["result"]["state"] == "prompted"
        pty.write(b"4")
        rating = wait_for(lambda: sub.events("rating"), 10, what="rating")[0]
        assert rating["data"]["score"] == 4 and rating["data"]["staff"] == "E1024"
        assert rating["data"]["prompt"] == r["result"]["prompt"]
        send_command(sub, "prompt", {})
        pty.write(b"1")  # low score, no reason: times out after 2 s
        wait_for(lambda: sub.events("alert"), 10, what="dissatisfied alert")
        ratings = sub.events("rating")
        assert [e["data"]["reason_asked"] for e in ratings] == [False, True]
        assert sub.events("alert")[0]["seq"] == ratings[1]["seq"] + 1
        reason = wait_for(lambda: sub.events("reason"), 10, what="reason timed out")[0]
        assert reason["data"]["rating"] == ratings[1]["id"] and reason["data"]["reason"] is None
        assert send_command(sub, "unknown", {})["ok"] is False
        assert send_command(sub, "pause", {})["result"]["state"] == "paused"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    err = log.read_text()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    statuses = sub.payloads("/status")
    assert statuses[-1]["state"] == "offline" and statuses[-1]["reason"] == "shutdown"


@pytest.mark.skipif(
    any(__import__("pathlib").Path("/dev/dri").glob("card*")),
    reason="this machine has a KMS screen",
)
def test_pad_without_a_screen_says_use_headless(config_writer) -> None:
    path = config_writer(extra='[buttons]\ndriver = "touch"\n')
    r = run_careterm(
        "pad", "--config", str(path), DISPLAY="", WAYLAND_DISPLAY="", SDL_VIDEODRIVER=""
    )
    assert r.returncode == 2
    assert "--headless" in r.stderr and "Traceback" not in r.stderr
    assert not (path.parent / "data").exists()  # nothing was started
