"""Serial line readers: the pure assembler, and the driver through a pty opened by path."""

from __future__ import annotations

from drivers.base import DeviceState
from drivers.card_reader.classify import Classifier
from drivers.card_reader.line_reader import LineAssembler, SerialLineReader
from tests.conftest import wait_for


def test_cr_lf_and_crlf_each_end_one_line() -> None:
    a = LineAssembler()
    assert a.feed(b"one\rtwo\nthree\r\nfour", now=0) == ["one", "two", "three"]
    assert a.feed(b"\r\n", now=0.1) == ["four"]


def test_512_characters_pass_513_are_rejected_and_the_next_line_is_fine() -> None:
    a = LineAssembler()
    assert a.feed(b"7" * 512 + b"\r", now=0) == ["7" * 512]
    assert a.feed(b"7" * 513 + b"\rS1024\r", now=0) == [None, "S1024"]
    assert a.rejected == 1
    assert a.feed("中".encode() * 512 + b"\n", now=0) == ["中" * 512]
    assert a.feed(b"x" * 100_000 + b"\nok\n", now=0) == [None, "ok"]


def test_control_characters_and_bad_utf8_are_rejected_and_noise_is_nothing() -> None:
    """A rejected line is None (the patient is told "not recognised"); a line of only control
    characters, spaces and NULs is line noise (a reader powering up): nothing."""
    a = LineAssembler()
    gbk_qr = "CT1:挂号".encode("gbk")
    assert a.feed(b"S10\x0224\rS1\x1b24\r\xff\xfe\r" + gbk_qr + b"\rS1024\r", now=0) == [
        None,
        None,
        None,
        None,
        "S1024",
    ]
    assert a.rejected == 4
    assert a.feed(b"\x00\x00\x1b \x7f\r\n\r\n\x02\x03\rS1\r", now=0) == ["S1"]
    assert a.rejected == 4 and a.noise == 2


def test_a_stale_partial_line_is_dropped() -> None:
    a = LineAssembler(stale_s=0.5)
    assert a.feed(b"noise", now=0) == []
    assert a.feed(b"S1024\r", now=1.0) == ["S1024"]
    assert a.feed(b"S10", now=2.0) == []
    assert a.feed(b"24\r", now=2.2) == ["S1024"]


def test_serial_reader_reads_through_a_pty(pty, classifier: Classifier) -> None:
    reads = []
    r = SerialLineReader(pty.path, 9600, classifier)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5, what="reader open")
        pty.write(b"CT1:A20261123-0042\r\n")
        pty.write(b"\x00\x00\r\x01garbage\r\n;6225880112345678=2512?\r")
        wait_for(lambda: len(reads) == 3, 5, what="three reads")
        assert reads[0].appointment == "A20261123-0042"
        assert reads[1].kind == "unknown" and reads[1].problem == "unrecognised"
        assert reads[2].kind == "medical_card"
    finally:
        r.stop()


def test_a_double_scan_is_reported_once(pty, classifier: Classifier) -> None:
    reads = []
    r = SerialLineReader(pty.path, 9600, classifier)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5)
        pty.write(b"S1024\rS1024\r")
        pty.write(b"S2048\r")
        wait_for(lambda: len(reads) >= 2, 5)
        assert [x.token for x in reads] == [reads[0].token, reads[1].token]
        assert reads[0].token != reads[1].token
    finally:
        r.stop()


def test_unplug_and_replug_behind_a_by_id_link(plugged_pty, classifier: Classifier) -> None:
    port = plugged_pty("usb-Scanner_QR-if00-port0")
    reads, states = [], []
    r = SerialLineReader(port.path, 9600, classifier)
    r._port.reopen_every = 0.1
    r.on_state(lambda st, d: states.append(st))
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.OK, 5)
        port.write(b"S1024\r")
        wait_for(lambda: len(reads) == 1, 5)
        port.unplug()
        wait_for(lambda: r.state == DeviceState.ABSENT, 5, what="unplug noticed")
        port.plug()  # a new pty: another /dev/pts/N behind the link
        wait_for(lambda: r.state == DeviceState.OK, 5, what="replug noticed")
        port.write(b"S2048\r")
        wait_for(lambda: len(reads) == 2, 5, what="read after replug")
        assert DeviceState.ABSENT in states
    finally:
        r.stop()
