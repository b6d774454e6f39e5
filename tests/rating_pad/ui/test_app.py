"""The Kivy pad in a real window under Xvfb: touches on the screen reach the broker as events."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rating_pad.runner import Pad
from terminal.config import load_config
from tests.conftest import wait_for
from tests.rating_pad.conftest import BASE, STAFF, send_command, wait_subscribed

pytestmark = [pytest.mark.display, pytest.mark.broker]


@pytest.fixture(scope="module")
def window() -> Any:
    import os

    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    from kivy.base import EventLoop

    EventLoop.ensure_window()
    win = EventLoop.window
    win.size = (1024, 600)
    return win


def pump(pred: Callable[[], Any], timeout: float = 5.0, what: str = "screen") -> Any:
    """Run Kivy frames until `pred()` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        frames(0.01)
        v = pred()
        if v:
            return v
    raise AssertionError(f"timed out waiting for {what}")


def frames(seconds: float) -> None:
    """Run Kivy frames (clock, scheduled redraws, input) for `seconds`."""
    from kivy.base import EventLoop

    end = time.monotonic() + seconds
    while True:
        EventLoop.idle()
        if time.monotonic() >= end:
            return
        time.sleep(0.01)


def tap(widget: Any) -> None:
    """A finger down and up at the widget's centre, through the window's input dispatch."""
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(*widget.center)
    t = UnitTestTouch(x, y)
    t.touch_down()
    frames(0.05)
    t.touch_up()
    frames(0.05)


@pytest.fixture
def ui_pad(window, broker, config_writer, subscriber_factory) -> Iterator[tuple[Any, Pad, Any]]:
    from rating_pad.ui.app import make_root

    path = config_writer(
        broker_url=broker.url,
        extra='[buttons]\ndriver = "touch"\n[rating]\nreason_timeout_s = 20\n'
        "min_response_ms = 0\nvoice = false\n",
    )
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    sub.publish("careterm/main/staff", STAFF, retain=True)
    pad = Pad(load_config(path), str(path))
    pad.start()
    wait_subscribed(sub)
    root = make_root(pad)
    window.add_widget(root)
    root.size = window.size
    try:
        yield root, pad, sub
    finally:
        window.remove_widget(root)
        pad.stop()


def test_touch_rating_reason_and_language(ui_pad) -> None:
    root, pad, sub = ui_pad
    pump(lambda: root.screen == "idle", what="idle screen")
    assert send_command(sub, "staff", {"action": "sign_in", "staff": "E1024"})["ok"]
    pump(
        lambda: root.view and root.view.staff and root.view.staff.staff == "E1024",
        what="clerk shown",
    )
    r = send_command(sub, "prompt", {})
    pump(lambda: root.screen == "prompt", what="prompt screen")
    assert [b.score for b in root.rate_buttons] == [4, 3, 2, 1]

    tap(root.lang_button)
    pump(lambda: root.lang == "en" and root.rate_buttons, what="English")
    captions = [b.caption for b in root.rate_buttons]
    assert captions == ["Very satisfied", "Satisfied", "Fairly satisfied", "Dissatisfied"]

    worst = next(b for b in root.rate_buttons if b.score == 1)
    tap(worst)
    pump(lambda: root.screen == "reason", what="reason screen")
    assert root.lang == "en"  # the same patient keeps their language
    assert [b.caption for b in root.reason_buttons][:2] == ["Long wait", "Unfriendly service"]
    tap(root.reason_buttons[1])  # a double tap right after the score: ignored
    frames(0.7)
    assert root.screen == "reason"
    tap(root.reason_buttons[1])
    pump(lambda: root.screen == "thanks", what="thank-you screen")

    rating = wait_for(lambda: sub.events("rating"), 10, what="rating")[0]["data"]
    assert rating["score"] == 1 and rating["reason_asked"] is True
    assert rating["staff"] == "E1024" and rating["prompt"] == r["result"]["prompt"]
    alert = wait_for(lambda: sub.events("alert"), 10, what="alert")[0]["data"]
    assert alert["kind"] == "dissatisfied" and alert["reason"] is None
    reason = wait_for(lambda: sub.events("reason"), 10, what="reason")[0]["data"]
    assert reason["reason"] == "服务态度差"  # stored in the configured language

    pump(lambda: root.screen == "idle", timeout=6, what="back to idle")
    assert root.lang == "zh"  # the next patient starts in the default language


def test_touch_outside_a_prompt_does_nothing_and_pause_shows(ui_pad) -> None:
    root, pad, sub = ui_pad
    pump(lambda: root.screen == "idle", what="idle screen")
    assert root.rate_buttons == []  # prompted mode: no keys until the queue asks
    tap(root)
    assert send_command(sub, "pause", {})["ok"]
    pump(lambda: root.screen == "paused", what="paused screen")
    assert send_command(sub, "resume", {})["ok"]
    pump(lambda: root.screen == "idle", what="idle again")
    send_command(sub, "staff", {"action": "sign_in", "staff": "E2000"})
    send_command(sub, "staff", {"action": "sign_out"})
    pump(lambda: root.screen == "closed", what="closed screen")
    time.sleep(0.2)
    assert sub.events("rating") == []


@pytest.mark.slow
def test_careterm_pad_with_screen_runs_and_stops_on_sigterm(
    broker, pty, config_writer, subscriber_factory, processes
) -> None:
    import signal

    from tests.conftest import careterm_cmd

    path = config_writer(
        broker_url=broker.url,
        extra=f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n'
        "[rating]\nmin_response_ms = 0\nvoice = false\n",
    )
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    log = path.with_suffix(".log")
    proc = processes.start(
        careterm_cmd("pad", "--config", str(path)),
        log=log,
        CARETERM_PAD_WINDOW="800x480",
        KIVY_NO_ARGS="1",
    )
    wait_subscribed(sub)
    time.sleep(1.0)  # the keypad port opens
    r = send_command(sub, "prompt", {})
    assert r["ok"], r
    pty.write(b"3")
    rating = wait_for(lambda: sub.events("rating"), 10, what="rating from the keypad")[0]
    assert rating["data"]["score"] == 3 and rating["data"]["prompt"] == r["result"]["prompt"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    err = log.read_text()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err


def test_keyboard_driver_types_keys(window, broker, config_writer, subscriber_factory) -> None:
    from rating_pad.ui.app import make_root

    path = config_writer(
        broker_url=broker.url, extra='[buttons]\ndriver = "keyboard"\n[rating]\nmode = "free"\n'
    )
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    pad = Pad(load_config(path), str(path))
    pad.start()
    root = make_root(pad)
    window.add_widget(root)
    try:
        pump(lambda: root.screen == "idle-free", what="free idle screen")
        window.dispatch("on_key_down", ord("3"), 0, "3", [])
        window.dispatch("on_key_down", ord("x"), 0, "x", [])  # not a key: ignored
        rating = wait_for(lambda: sub.events("rating"), 10, what="typed rating")[0]
        assert rating["data"]["score"] == 3
        window.dispatch("on_key_down", ord("s"), 0, "s", [])  # "S" pauses
        pump(lambda: root.screen == "paused", what="paused by typing S")
    finally:
        window.remove_widget(root)
        pad.stop()


@pytest.mark.slow
def test_full_screen_fills_a_panel_without_a_window_manager(
    broker, config_writer, subscriber_factory, processes, tmp_path
) -> None:
    """On a bare X server (no window manager honours a full-screen request) the pad's window is
    the screen: no 800x600 window with the rightmost key (不满意) cut off."""
    import shutil
    import signal
    import subprocess

    from PIL import ImageGrab

    from tests.conftest import careterm_cmd

    if not shutil.which("Xvfb"):
        pytest.skip("no Xvfb")
    # Xvfb picks a free display number itself and writes it to the pipe (-displayfd): a number
    # of our own choosing could be taken by another X server (xvfb-run, other test runs).
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            "1024x600x24",
            "-br",
            "-nolisten",
            "tcp",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        assert number.isdigit(), "Xvfb did not report its display"
        display = f":{number}"
        wait_for(lambda: _grab(ImageGrab, display) is not None, 10, what="Xvfb up")
        path = config_writer(
            broker_url=broker.url,
            extra='[buttons]\ndriver = "touch"\n[rating]\nmin_response_ms = 0\nvoice = false\n',
        )
        sub = subscriber_factory(broker.port, [f"{BASE}/#"])
        sub.publish("careterm/main/staff", STAFF, retain=True)
        log = path.with_suffix(".log")
        env = {"DISPLAY": display, "KIVY_NO_ARGS": "1", "CARETERM_PAD_WINDOW": ""}
        proc = processes.start(careterm_cmd("pad", "--config", str(path)), log=log, **env)
        wait_subscribed(sub)
        assert send_command(sub, "prompt", {})["ok"]
        red = (199, 41, 41)  # the worst key, rightmost

        def full() -> Any:
            img = _grab(ImageGrab, display)
            if img is None:
                return None
            px = img.load()
            black = sum(
                1 for x in range(0, 1024, 8) for y in range(0, 600, 8) if px[x, y] == (0, 0, 0)
            )
            reds = [x for x in range(0, 1024, 4) for y in range(200, 600, 8) if px[x, y] == red]
            return img if black == 0 and reds and max(reds) > 900 else None

        img = wait_for(full, 20, what="the pad filling the 1024x600 screen with all keys")
        img.save(tmp_path / "bare-x-1024x600.png")
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        assert "no window manager" in log.read_text()
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def _grab(image_grab: Any, display: str) -> Any:
    try:
        return image_grab.grab(xdisplay=display).convert("RGB")
    except OSError:
        return None


def test_the_next_patient_starts_in_the_default_language_without_passing_idle(window) -> None:
    """A prompt during the thank-you screen (or one superseding an unanswered prompt) is the
    next patient: English chosen by the last one does not carry over. A prompt opening over the
    idle screen keeps what the patient being served chose there."""
    from rating_pad.machine import PadMachine, Staff
    from rating_pad.ui.screens import PadRoot
    from terminal.config import parse_config

    m = PadMachine(parse_config({"device": {"id": "p", "role": "rating_pad", "site": "main"}}))
    m.sign_in(Staff(staff="E1024", name="王芳"), 0.0)
    root = PadRoot(on_score=lambda s: None, on_reason=lambda i: None, keypad=True)
    window.add_widget(root)
    root.size = window.size
    try:
        root.show(m.view(0.0))
        root.toggle_language()  # on the idle screen, by the patient at the window
        m.prompt(1.0)
        root.show(m.view(1.0))
        assert root.lang == "en" and root.rate_buttons[0].caption == "Very satisfied"
        m.key("4", 3.0)
        root.show(m.view(3.0))
        assert root.screen == "thanks" and root.lang == "en"
        m.prompt(4.0)  # the queue calls the next ticket during the thank-you screen
        root.show(m.view(4.0))
        assert root.screen == "prompt" and root.lang == "zh"
        assert root.rate_buttons[0].caption == "非常满意"
        root.toggle_language()
        m.prompt(9.0)  # nobody rated: the next ticket supersedes it
        root.show(m.view(9.0))
        assert root.lang == "zh"
        root.toggle_language()
        m.key("1", 11.0)
        root.show(m.view(11.0))
        assert root.screen == "reason" and root.lang == "en"  # the same patient
        m.prompt(12.0)  # deferred behind the reason question
        m.choose_reason(0, 13.0)
        root.show(m.view(13.0))
        assert root.screen == "thanks" and root.lang == "en"
        m.tick(16.5)
        root.show(m.view(16.5))  # the thank-you ends and the deferred prompt opens
        assert root.screen == "prompt" and root.lang == "zh"
    finally:
        window.remove_widget(root)


def test_long_chinese_reasons_stay_readable_on_a_480x320_pad(window) -> None:
    """Reasons of nine or ten characters on a three-key 480x320 pad: set on two lines at the
    reason screen's normal size instead of shrunk to one small line; nothing clipped."""
    from kivy.uix.label import Label

    from rating_pad.machine import PadMachine, Staff
    from rating_pad.ui.screens import FONT_FLOOR, PadRoot
    from rating_pad.ui.shots import overflows
    from terminal.config import parse_config

    reasons = ["排队等候时间太长了", "工作人员服务态度不好", "收费项目解释不清楚", "其他原因"]
    cfg = parse_config(
        {
            "device": {"id": "p", "role": "rating_pad", "site": "main"},
            "rating": {"labels": ["不满意", "满意", "非常满意"], "reasons": reasons},
            "buttons": {"keys": {"1": 1, "2": 2, "3": 3}},
        }
    )
    m = PadMachine(cfg)
    m.sign_in(Staff(staff="E1024", name="王芳"), 0.0)
    m.prompt(0.0)
    m.key("1", 2.0)
    root = PadRoot(
        on_score=lambda s: None,
        on_reason=lambda i: None,
        keypad=True,
        size=(480, 320),
        size_hint=(None, None),
    )
    window.add_widget(root)
    try:
        view = m.view(2.5)
        view.today, view.link = 12, "online"
        root.show(view)
        frames(0.1)
        assert root.screen == "reason"
        assert [b.caption for b in root.reason_buttons] == [reasons[2], reasons[1], reasons[0]] + [
            reasons[3]
        ]
        nominal = 30 * FONT_FLOOR  # the reason font of a 480x320 panel before any fitting
        for b in root.reason_buttons[:3]:
            (caption,) = [w for w in b.walk(restrict=True) if isinstance(w, Label) and w.bold]
            assert caption.text.replace("\n", "") == b.caption
            assert caption.font_size >= 0.95 * nominal, (b.caption, caption.font_size)
        assert overflows(root) == []
    finally:
        window.remove_widget(root)
