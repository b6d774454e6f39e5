"""Keypads: evdev decoding (names, repeats, stuck keys), evdev and serial keypads hot-plugged, the simulator."""

from __future__ import annotations

import os
import time

import pytest

from drivers.base import DeviceState
from drivers.buttons.evdev_keypad import EvdevKeypad, KeypadDecoder
from drivers.buttons.factory import open_keypad
from drivers.buttons.serial_keypad import SerialKeypad
from drivers.buttons.sim import SimulatedKeypad
from drivers.input_events import PRESS, RELEASE, REPEAT, EventStream, key_event_bytes
from tests.conftest import wait_for


def presses(decoder: KeypadDecoder, data: bytes) -> list[str]:
    return [n for n in (decoder.feed(e) for e in EventStream().feed(data)) if n]


def test_named_keys_and_repeats() -> None:
    d = KeypadDecoder({"KEY_KP4", "KEY_1"})
    data = (
        key_event_bytes(1.0, "KEY_KP4", PRESS)
        + key_event_bytes(1.4, "KEY_KP4", REPEAT)
        + key_event_bytes(1.5, "KEY_KP4", REPEAT)
        + key_event_bytes(1.6, "KEY_KP4", RELEASE)
        + key_event_bytes(2.0, "KEY_2", PRESS)
        + key_event_bytes(2.1, "KEY_1", PRESS)
    )
    assert presses(d, data) == ["KEY_KP4", "KEY_1"]


def test_character_names_match_key_codes() -> None:
    d = KeypadDecoder({"1", "4", "P"})
    data = (
        key_event_bytes(1.0, "KEY_1", PRESS)
        + key_event_bytes(1.1, "KEY_KP4", PRESS)
        + key_event_bytes(1.2, "KEY_P", PRESS)
        + key_event_bytes(1.3, "KEY_Q", PRESS)
    )
    assert presses(d, data) == ["1", "4", "P"]


def test_stuck_key_gives_no_press_until_released() -> None:
    d = KeypadDecoder({"KEY_1"}, stuck_s=2.0)
    assert presses(d, key_event_bytes(10.0, "KEY_1", PRESS)) == ["KEY_1"]
    assert d.check_stuck(11.0) == set()
    assert d.check_stuck(12.5) == {"KEY_1"}
    # a stuck contact that bounces open and shut: no press until a clean release
    assert presses(d, key_event_bytes(13.0, "KEY_1", PRESS)) == []
    presses(d, key_event_bytes(14.0, "KEY_1", RELEASE))
    assert d.check_stuck(15.0) == set()
    assert presses(d, key_event_bytes(16.0, "KEY_1", PRESS)) == ["KEY_1"]


@pytest.fixture
def pipe_link(tmp_path):
    r, w = os.pipe()
    link = tmp_path / "usb-Keypad-event-kbd"
    os.symlink(f"/proc/{os.getpid()}/fd/{r}", link)
    yield link, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_evdev_keypad_through_a_pipe_reports_stuck_keys(pipe_link) -> None:
    link, w = pipe_link
    got = []
    pad = EvdevKeypad(str(link), {"KEY_KP1", "KEY_KP4"}, 80, reopen_every=0.05, stuck_s=0.3)
    pad.device._idle_every = 0.05
    pad.start(got.append)
    try:
        wait_for(lambda: pad.state == DeviceState.OK, 5)
        now = time.time()
        os.write(
            w, key_event_bytes(now, "KEY_KP4", PRESS) + key_event_bytes(now, "KEY_KP4", REPEAT)
        )
        wait_for(lambda: got, 5)
        assert [p.key for p in got] == ["KEY_KP4"]
        wait_for(lambda: pad.state == DeviceState.ERROR, 5, what="stuck key noticed")
        assert "KEY_KP4 stuck" in pad.detail
        os.write(w, key_event_bytes(time.time(), "KEY_KP4", RELEASE))
        wait_for(lambda: pad.state == DeviceState.OK, 5, what="stuck key released")
        now = time.time()
        os.write(
            w, key_event_bytes(now, "KEY_KP1", PRESS) + key_event_bytes(now, "KEY_KP1", RELEASE)
        )
        wait_for(lambda: len(got) == 2, 5)
    finally:
        pad.stop()


def test_serial_keypad_survives_unplug(plugged_pty) -> None:
    port = plugged_pty("usb-Keypad_Serial-if00-port0")
    got = []
    pad = SerialKeypad(port.path, 9600, {"1", "2", "3", "4"}, 80)
    pad._port.reopen_every = 0.1
    pad.start(got.append)
    try:
        wait_for(lambda: pad.state == DeviceState.OK, 5)
        port.write(b"4x")
        wait_for(lambda: got, 5)
        port.unplug()
        wait_for(lambda: pad.state == DeviceState.ABSENT, 5)
        port.plug()
        wait_for(lambda: pad.state == DeviceState.OK, 5)
        port.write(b"1")
        wait_for(lambda: len(got) == 2, 5)
        assert [p.key for p in got] == ["4", "1"]
    finally:
        pad.stop()


def test_simulated_keypad_debounces_and_drops_unknown_names() -> None:
    got = []
    pad = SimulatedKeypad({"1", "2", "P"}, debounce_ms=80)
    pad.start(got.append)
    try:
        assert pad.press("1", t=100.0)
        assert pad.press("1", t=100.03)  # bounce
        assert not pad.press("9")
        assert pad.press("P", t=100.05)
        assert pad.press("1", t=100.2)
        wait_for(lambda: len(got) == 3, 5)
        assert [p.key for p in got] == ["1", "P", "1"]
        pad.unplug()
        assert not pad.press("2") and pad.state == DeviceState.ABSENT
    finally:
        pad.stop()


def test_factory_builds_each_keypad(make_cfg) -> None:
    sim = open_keypad(make_cfg("rating_pad", buttons={"driver": "keyboard"}))
    assert isinstance(sim, SimulatedKeypad)
    ev = open_keypad(
        make_cfg(
            "rating_pad",
            buttons={
                "driver": "evdev",
                "device": "/dev/input/by-id/x",
                "keys": {"KEY_KP1": 1, "KEY_KP4": 4},
            },
        )
    )
    assert isinstance(ev, EvdevKeypad) and ev.keys == {"KEY_KP1", "KEY_KP4"}
    assert isinstance(
        open_keypad(make_cfg("rating_pad", buttons={"driver": "serial"})), SerialKeypad
    )
    assert open_keypad(make_cfg("rating_pad", buttons={"driver": "touch"})) is None


def test_syn_dropped_forgets_held_keys() -> None:
    from drivers.input_events import EV_SYN, SYN_DROPPED, pack

    d = KeypadDecoder({"KEY_1"}, stuck_s=1.0)
    presses(d, key_event_bytes(1.0, "KEY_1", PRESS))
    presses(d, pack(1.5, EV_SYN, SYN_DROPPED, 0))  # the release was lost in the overflow
    assert d.check_stuck(5.0) == set()
    assert presses(d, key_event_bytes(6.0, "KEY_1", PRESS)) == ["KEY_1"]


def hold_until_stuck(pty, pad: SerialKeypad, key: bytes, timeout: float = 10.0) -> list[str]:
    """Repeat `key` every 0.1 s, as a jammed key does, until the keypad has reported it stuck;
    returns the state history (`on_state`), so a fault already cleared again is still seen."""
    seen: list[str] = []
    pad.on_state(lambda st, detail: seen.append(f"{st.value} {detail}"))
    end = time.monotonic() + timeout
    while not any(x.startswith("error") for x in seen):
        assert time.monotonic() < end, f"stuck key not noticed: {seen}"
        pty.write(key)
        time.sleep(0.1)
    return seen


def test_serial_keypad_reports_a_key_that_keeps_repeating(pty) -> None:
    got = []
    pad = SerialKeypad(pty.path, 9600, {"1", "4"}, 80, stuck_s=0.5)
    pad.start(got.append)
    try:
        wait_for(lambda: pad.state == DeviceState.OK, 5)
        seen = hold_until_stuck(pty, pad, b"4")
        assert any("'4' stuck" in x for x in seen), seen
        pty.write(b"1")  # another key: the fault ends (or has, at the pause before it)
        wait_for(lambda: got[-1].key == "1", 5, what="the next key")
        wait_for(lambda: pad.state == DeviceState.OK, 5, what="fault cleared")
    finally:
        pad.stop()


def test_serial_keypad_stuck_fault_clears_when_the_key_is_released(pty) -> None:
    """A jammed key freed: its bytes stop. The fault (and the site's keypad alert) must end
    then, not wait for the next patient to press something."""
    got = []
    pad = SerialKeypad(pty.path, 9600, {"1", "4"}, 80, stuck_s=0.5)
    pad.start(got.append)
    try:
        wait_for(lambda: pad.state == DeviceState.OK, 5)
        hold_until_stuck(pty, pad, b"4")
        # released: no more bytes at all
        wait_for(lambda: pad.state == DeviceState.OK, 5, what="fault cleared by the pause")
        assert pad.detail == pty.path and {k.key for k in got} == {"4"}
        pty.write(b"1")
        wait_for(lambda: got[-1].key == "1", 5, what="the next press")
        assert pad.state == DeviceState.OK
    finally:
        pad.stop()


def test_serial_key_bytes_byte_for_byte() -> None:
    from drivers.buttons.serial_keypad import decode_key_bytes

    assert decode_key_bytes(b"4\x00P\xff1z\r\n", {"1", "4", "P"}) == ["4", "P", "1"]
    assert decode_key_bytes(b"\xe4\xb8\xad", {"中"}) == []  # not ASCII: never a key


def test_an_evdev_device_node_that_cannot_be_grabbed_is_an_error_and_not_read() -> None:
    """A device node the keypad cannot grab (here /dev/null: not an input device; on a kiosk,
    one another program holds) is not read: its keys would also reach the screen."""
    pad = EvdevKeypad("/dev/null", {"KEY_KP1"}, 80, reopen_every=0.05)
    pad.start(lambda _: None)
    try:
        wait_for(lambda: pad.state == DeviceState.ERROR, 5, what="the grab refused")
        assert "cannot grab it" in pad.detail and "/dev/null" in pad.detail
        assert not pad.device.grabbed
    finally:
        pad.stop()
