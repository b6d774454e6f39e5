"""Thousands of random and truncated frames, lines and events into every reader: no crash, no hang,
and valid reads still come through afterwards."""

from __future__ import annotations

import os
import random
import time

import pytest

from drivers.base import DeviceState
from drivers.buttons.evdev_keypad import KeypadDecoder
from drivers.card_reader import sam_protocol as sam
from drivers.card_reader.classify import Classifier
from drivers.card_reader.evdev_reader import EvdevLineReader
from drivers.card_reader.idcard import IdCardReader, NoAnswer, SamSession
from drivers.card_reader.line_reader import LineAssembler, SerialLineReader
from drivers.card_reader.sim import SamModule, SimCard
from drivers.input_events import EV_KEY, EventStream, WedgeDecoder, pack, text_to_key_events
from drivers.printer.document import QR, Document, Rule, Text
from drivers.printer.escpos_build import TicketStyle, build
from drivers.printer.escpos_decode import decode
from drivers.printer.gb18030 import text_width
from tests.conftest import wait_for

GOOD = "11010519491231002X"
pytestmark = pytest.mark.timeout(90)


def good_text() -> bytes:
    return SimCard(number=GOOD, name="张三").text()


def mutations(rng: random.Random, n: int) -> list[bytes]:
    """Random bytes, truncated valid frames, valid frames with a flipped byte, absurd lengths."""
    valid = [
        sam.find_request(),
        sam.response_frame(sam.SW_FIND_OK, b"\0" * 4),
        sam.read_reply(good_text()),
        sam.response_frame(sam.SW_NO_CARD),
    ]
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(1, 64)))
        elif kind == 1:
            v = rng.choice(valid)
            out.append(v[: rng.randrange(1, len(v))])
        elif kind == 2:
            v = bytearray(rng.choice(valid))
            v[rng.randrange(len(v))] ^= 1 << rng.randrange(8)
            out.append(bytes(v))
        elif kind == 3:
            out.append(sam.PREAMBLE + rng.randbytes(2) + rng.randbytes(rng.randrange(0, 16)))
        else:
            out.append(sam.PREAMBLE * rng.randrange(1, 4))
    return out


def test_frame_parser_survives_garbage_then_parses() -> None:
    rng = random.Random(1)
    p = sam.FrameParser()
    for chunk in mutations(rng, 5000):
        for f in p.feed(chunk):
            assert len(f.body) >= 2  # whatever comes out passed length and checksum checks
        try:
            sam.parse_frame(chunk)
        except sam.FrameError:
            pass
    p.reset()
    frames = p.feed(sam.read_reply(good_text()))
    assert (
        len(frames) == 1 and sam.decode_text(sam.split_read_data(frames[0].data)[0]).number == GOOD
    )


def test_sam_session_survives_random_replies(classifier: Classifier) -> None:
    rng = random.Random(2)
    pool = mutations(rng, 3000)
    parser = sam.FrameParser()

    def chaos(request: bytes) -> sam.Frame | None:
        parser.reset()
        frames = parser.feed(rng.choice(pool))
        return frames[0] if frames else None

    session = SamSession(chaos, classifier)
    for _ in range(3000):
        try:
            read = session.poll()
        except NoAnswer:
            continue
        assert read is None or read.masked == "1101**********002X"
    module = SamModule()
    module.present(SimCard(number=GOOD))
    good = SamSession(
        lambda req: (parser.reset(), parser.feed(module.respond(req)))[1][0], classifier
    )
    assert good.poll() is not None


def test_line_assembler_and_classifier_survive_random_lines(classifier: Classifier) -> None:
    rng = random.Random(3)
    a = LineAssembler()
    alphabet = b"0123456789SCT1:;=?%^ABXx\r\n\x00\x1b\xff\xfe-" + "中".encode()
    for _ in range(5000):
        n = rng.choice((1, 5, 18, 40, 511, 512, 513, 600))
        data = (
            bytes(rng.choice(alphabet) for _ in range(n))
            if rng.random() < 0.7
            else rng.randbytes(n)
        )
        for line in a.feed(data, now=0):
            if line is not None:  # None: a rejected line, told "not recognised"
                assert len(line) <= 512
                classifier.classify(line)
    assert a.feed(b"\rS1024\r", now=0)[-1:] == ["S1024"]
    for _ in range(3000):
        classifier.classify(
            "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(40)))
        )
    assert classifier.classify("S1024") is not None


def test_event_decoders_survive_random_events() -> None:
    rng = random.Random(4)
    stream, wedge, pad = EventStream(), WedgeDecoder(), KeypadDecoder({"KEY_1", "KEY_KP4", "1"})
    for _ in range(3000):
        if rng.random() < 0.5:
            data = rng.randbytes(rng.randrange(1, 100))
        else:
            data = pack(
                rng.random() * 1e6,
                rng.choice((EV_KEY, 0, 4, rng.randrange(65536))),
                rng.randrange(65536),
                rng.randrange(-(2**31), 2**31),
            )
        for ev in stream.feed(data):
            line = wedge.feed(ev)
            assert line is None or len(line) <= 512
            pad.feed(ev)
            pad.check_stuck(ev.t)
    fresh = EventStream()  # a real device only ever delivers whole events
    lines = [x for x in (wedge.feed(e) for e in fresh.feed(text_to_key_events("S1024", 2e6))) if x]
    assert lines == ["S1024"]


def test_escpos_builder_round_trips_random_text() -> None:
    rng = random.Random(5)
    style = TicketStyle(columns=32)
    for _ in range(300):
        text = "".join(
            chr(
                rng.choice(
                    (
                        rng.randrange(32, 127),
                        rng.randrange(0x4E00, 0x9FA5),
                        rng.randrange(0, 0x2FFFF),
                    )
                )
            )
            for _ in range(rng.randrange(80))
        )
        doc = Document(
            (
                Text(text, double=rng.random() < 0.3, align=rng.choice(("left", "center"))),
                Rule(),
                QR(text or "x"),
            )
        )
        t = decode(build(doc, style))
        for ln in t.lines:
            assert text_width(ln.text) <= 32
        assert t.qr == [(text or "x").encode("utf-8", "replace").decode()] and t.cut


def test_serial_line_reader_through_a_pty_after_noise(pty, classifier: Classifier) -> None:
    rng = random.Random(6)
    reads = []
    r = SerialLineReader(pty.path, 9600, classifier)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5)
        for _ in range(2000):
            pty.write(rng.randbytes(rng.randrange(1, 64)))
        pty.write(b"\r\n" + b"9" * 700 + b"\r\n")
        reads.clear()
        time.sleep(0.1)
        pty.write(b"\r\nS1024\r\n")
        wait_for(lambda: any(x.kind == "staff_card" for x in reads), 10, what="read after noise")
        assert r._port.is_alive()
    finally:
        r.stop()


def test_id_card_reader_through_a_pty_after_garbage_replies(pty, classifier: Classifier) -> None:
    rng = random.Random(7)
    pool = mutations(rng, 500)
    module = SamModule()
    state = {"chaos": True, "served": 0}

    def serve() -> None:
        buf = bytearray()
        import select

        while state["served"] >= 0:
            r, _, _ = select.select([pty.master], [], [], 0.05)
            if not r:
                continue
            try:
                buf += os.read(pty.master, 4096)
            except OSError:
                return
            while (i := buf.find(sam.PREAMBLE)) >= 0 and len(buf) >= i + 10:
                req = bytes(buf[i : i + 10])
                del buf[: i + 10]
                state["served"] += 1
                reply = rng.choice(pool) if state["chaos"] else module.respond(req)
                os.write(pty.master, reply)

    import threading

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    reads = []
    r = IdCardReader(pty.path, 115200, classifier, poll_every=0.0, reply_timeout=0.02)
    r.start(reads.append)
    try:
        wait_for(lambda: state["served"] > 250, 30, what="250 garbage replies")
        state["chaos"] = False
        module.present(SimCard(number=GOOD))
        wait_for(
            lambda: any(x.masked == "1101**********002X" for x in reads),
            10,
            what="a good read after garbage",
        )
        assert r.port.is_alive()
    finally:
        state["served"] = -(10**9)
        r.stop()
        t.join(2)


def test_wedge_reader_through_a_pipe_after_random_events(tmp_path, classifier: Classifier) -> None:
    rng = random.Random(8)
    rfd, wfd = os.pipe()
    link = tmp_path / "wedge"
    os.symlink(f"/proc/{os.getpid()}/fd/{rfd}", link)
    reads = []
    r = EvdevLineReader(str(link), classifier, reopen_every=0.05)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5)
        t0 = time.time()
        for i in range(3000):
            os.write(
                wfd, pack(t0 + i * 0.001, EV_KEY, rng.randrange(0, 255), rng.choice((0, 1, 2, 7)))
            )
        os.write(wfd, text_to_key_events("S1024", t0 + 10))
        wait_for(lambda: any(x.kind == "staff_card" for x in reads), 10)
        assert r.device.is_alive()
    finally:
        r.stop()
        os.close(wfd)
        os.close(rfd)


def test_keypads_after_random_input(pty, tmp_path) -> None:
    from drivers.buttons.evdev_keypad import EvdevKeypad
    from drivers.buttons.serial_keypad import SerialKeypad
    from drivers.input_events import PRESS, key_event_bytes

    rng = random.Random(9)
    got = []
    serial_pad = SerialKeypad(pty.path, 9600, {"1", "2", "3", "4"}, 0)
    serial_pad.start(got.append)
    rfd, wfd = os.pipe()
    link = tmp_path / "keypad"
    os.symlink(f"/proc/{os.getpid()}/fd/{rfd}", link)
    evgot = []
    ev_pad = EvdevKeypad(str(link), {"KEY_KP1", "KEY_KP4"}, 0, reopen_every=0.05)
    ev_pad.start(evgot.append)
    try:
        wait_for(lambda: serial_pad.state == DeviceState.OK and ev_pad.state == DeviceState.OK, 5)
        for _ in range(2000):
            pty.write(bytes(b for b in rng.randbytes(16) if b not in b"1234"))
        t0 = time.time()
        for i in range(3000):
            os.write(
                wfd,
                pack(
                    t0 + i * 1e-4,
                    rng.choice((EV_KEY, 0, 3)),
                    rng.randrange(0, 70),
                    rng.choice((0, 2, 5)),
                ),
            )
        time.sleep(0.2)
        assert got == [] and evgot == []
        pty.write(b"3")
        os.write(wfd, key_event_bytes(time.time(), "KEY_KP4", PRESS))
        wait_for(lambda: got and evgot, 10, what="valid keys after noise")
        assert got[0].key == "3" and evgot[0].key == "KEY_KP4"
    finally:
        serial_pad.stop()
        ev_pad.stop()
        os.close(wfd)
        os.close(rfd)
