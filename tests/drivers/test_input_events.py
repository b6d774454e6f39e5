"""Evdev decoding with real `struct input_event` bytes, and the wedge reader through a pipe opened by path."""

from __future__ import annotations

import os
import struct
import time

import pytest

from drivers.base import DeviceState
from drivers.card_reader.evdev_reader import EvdevLineReader
from drivers.input_events import (
    EV_KEY,
    EV_SYN,
    PRESS,
    RELEASE,
    REPEAT,
    EventStream,
    WedgeDecoder,
    key_event_bytes,
    pack,
    text_to_key_events,
)
from tests.conftest import wait_for

# linux/input-event-codes.h
KEY_1, KEY_S, KEY_ENTER, KEY_LEFTSHIFT, KEY_KP4, KEY_SEMICOLON = 2, 31, 28, 42, 75, 39


def raw_event(sec: int, usec: int, type_: int, code: int, value: int) -> bytes:
    """`struct input_event` laid out by hand: timeval (two C longs), u16, u16, s32."""
    return struct.pack("@llHHi", sec, usec, type_, code, value)


def test_event_size_matches_the_kernel_struct() -> None:
    assert len(raw_event(0, 0, 0, 0, 0)) == struct.calcsize("@llHHi")
    assert len(raw_event(0, 0, 0, 0, 0)) in (16, 24)


def test_events_split_across_reads_are_reassembled() -> None:
    data = raw_event(100, 250_000, EV_KEY, KEY_KP4, PRESS) + raw_event(100, 250_000, EV_SYN, 0, 0)
    s = EventStream()
    got = s.feed(data[:5]) + s.feed(data[5:30]) + s.feed(data[30:])
    assert [(e.type, e.code, e.value) for e in got] == [(EV_KEY, KEY_KP4, PRESS), (EV_SYN, 0, 0)]
    assert got[0].t == pytest.approx(100.25)
    assert got[0].key == "KEY_KP4"


def test_pack_is_the_kernel_layout() -> None:
    assert pack(100.25, EV_KEY, KEY_1, PRESS) == raw_event(100, 250_000, EV_KEY, KEY_1, PRESS)


def decode_lines(data: bytes, gap: float = 0.3) -> list[str]:
    d = WedgeDecoder(gap)
    out = []
    for ev in EventStream().feed(data):
        line = d.feed(ev)
        if line is not None:
            out.append(line)
    return out


def test_shift_gives_upper_case_and_symbols() -> None:
    t = 1000.0
    data = (
        key_event_bytes(t, KEY_LEFTSHIFT, PRESS)
        + key_event_bytes(t, KEY_S, PRESS)
        + key_event_bytes(t, KEY_S, RELEASE)
        + key_event_bytes(t, KEY_LEFTSHIFT, RELEASE)
        + key_event_bytes(t + 0.01, KEY_1, PRESS)
        + key_event_bytes(t + 0.01, KEY_1, RELEASE)
        + key_event_bytes(t + 0.02, KEY_LEFTSHIFT, PRESS)
        + key_event_bytes(t + 0.02, KEY_1, PRESS)
        + key_event_bytes(t + 0.02, KEY_LEFTSHIFT, RELEASE)
        + key_event_bytes(t + 0.03, KEY_SEMICOLON, PRESS)
        + key_event_bytes(t + 0.04, KEY_ENTER, PRESS)
    )
    assert decode_lines(data) == ["S1!;"]


def test_round_trip_of_typical_reader_output() -> None:
    for text in (
        "CT1:A20261123-0042",
        ";6225880112345678=2512?",
        "%B6225880112345678^ZHANG/SAN^2512?",
        "S1024",
        "11010519491231002X",
    ):
        assert decode_lines(text_to_key_events(text, 50.0)) == [text]


def test_a_gap_over_300_ms_starts_a_new_line() -> None:
    data = text_to_key_events("junk", 10.0)[: -2 * 2 * len(pack(0, 0, 0, 0))]  # no Enter
    data += text_to_key_events("S1024", 10.5)
    assert decode_lines(data) == ["S1024"]


def test_repeats_are_ignored_and_unknown_keys_spoil_the_line() -> None:
    t = 5.0
    data = (
        key_event_bytes(t, KEY_1, PRESS)
        + key_event_bytes(t + 0.01, KEY_1, REPEAT)
        + key_event_bytes(t + 0.02, KEY_1, RELEASE)
        + key_event_bytes(t + 0.03, KEY_ENTER, PRESS)
    )
    assert decode_lines(data) == ["1"]
    bad = key_event_bytes(t + 1, "KEY_F5", PRESS) + text_to_key_events("S1024", t + 1.01)
    d = WedgeDecoder()
    lines = [x for x in (d.feed(e) for e in EventStream().feed(bad)) if x]
    assert lines == [] and d.rejected == 1


def test_caps_lock_inverts_letters_only() -> None:
    t = 7.0
    data = (
        key_event_bytes(t, "KEY_CAPSLOCK", PRESS)
        + key_event_bytes(t, "KEY_A", PRESS)
        + key_event_bytes(t, KEY_1, PRESS)
        + key_event_bytes(t, KEY_LEFTSHIFT, PRESS)
        + key_event_bytes(t, "KEY_B", PRESS)
        + key_event_bytes(t, KEY_ENTER, PRESS)
    )
    assert decode_lines(data) == ["A1b"]


@pytest.fixture
def pipe_device(tmp_path):
    """A pipe reached by a by-id style symlink: the test writes raw events into it."""
    r, w = os.pipe()
    link = tmp_path / "usb-Reader_Wedge-event-kbd"
    os.symlink(f"/proc/{os.getpid()}/fd/{r}", link)
    fds = {"r": r, "w": w}
    yield link, fds
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass


def test_wedge_reader_through_a_pipe(pipe_device, classifier) -> None:
    link, fds = pipe_device
    reads = []
    r = EvdevLineReader(str(link), classifier, reopen_every=0.05)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5)
        now = time.time()
        os.write(fds["w"], text_to_key_events("S1024", now))
        os.write(fds["w"], text_to_key_events("not a card", now + 0.1))
        os.write(fds["w"], text_to_key_events("CT1:A20261123-0042", now + 0.2))
        os.write(fds["w"], text_to_key_events("9" * 600, now + 0.3))  # rejected whole
        wait_for(lambda: len(reads) == 4, 5)
        # a line that is no card, or is rejected, is reported as a failed read: the kiosk says so
        assert [x.kind for x in reads] == ["staff_card", "unknown", "appointment_qr", "unknown"]
        assert reads[1].problem == "unrecognised" and reads[1].token is None
        assert reads[3].problem == "unrecognised"
        assert r.device.grabbed is False  # a pipe cannot be grabbed; an input device is
    finally:
        r.stop()


def test_wedge_reader_survives_unplug_and_replug(pipe_device, classifier, tmp_path) -> None:
    link, fds = pipe_device
    reads = []
    r = EvdevLineReader(str(link), classifier, reopen_every=0.05)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5)
        os.close(fds.pop("w"))
        os.close(fds.pop("r"))
        link.unlink()
        wait_for(lambda: r.state == DeviceState.ABSENT, 5, what="unplug noticed")
        r2, w2 = os.pipe()
        fds.update(r=r2, w=w2)
        os.symlink(f"/proc/{os.getpid()}/fd/{r2}", link)
        wait_for(lambda: r.state == DeviceState.OK, 5, what="replug noticed")
        os.write(w2, text_to_key_events("S1024", time.time()))
        wait_for(lambda: reads, 5)
    finally:
        r.stop()


def test_syn_dropped_discards_the_damaged_line() -> None:
    from drivers.input_events import SYN_DROPPED

    half = text_to_key_events("S10", 30.0)
    half = half[: len(half) - 4 * len(pack(0, 0, 0, 0))]  # without the Enter
    data = half + pack(30.05, EV_SYN, SYN_DROPPED, 0) + text_to_key_events("S2048", 30.06)
    assert decode_lines(data) == ["S2048"]


def test_eviocgrab_is_iow_E_0x90_int() -> None:
    from drivers.evdev_device import EVIOCGRAB

    ioc_write, size_shift, type_shift = 1, 16, 8
    expected = (
        (ioc_write << 30) | (struct.calcsize("i") << size_shift) | (ord("E") << type_shift) | 0x90
    )
    assert expected == EVIOCGRAB
