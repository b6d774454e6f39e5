"""The ID card reader over a pty speaking SPEC 6.3, with the simulated SAM module on the other end."""

from __future__ import annotations

import time

import pytest

from drivers.base import DeviceState
from drivers.card_reader.classify import Classifier
from drivers.card_reader.idcard import IdCardReader
from drivers.card_reader.sim import SamModule, SimCard, SimulatedCardReader
from tests.conftest import wait_for
from tests.drivers.test_classify import spec_token

GOOD = "11010519491231002X"
BAD_CHECK = "110105194912310021"


def fast_reader(path: str, classifier: Classifier) -> IdCardReader:
    return IdCardReader(
        path, 115200, classifier, poll_every=0.05, reply_timeout=0.3, reopen_every=0.1
    )


def test_one_report_per_presentation(pty, classifier, sam_server) -> None:
    module = SamModule()
    sam_server(pty.master, module)
    reads = []
    r = fast_reader(pty.path, classifier)
    r.start(reads.append)
    try:
        wait_for(lambda: module.requests > 2, 5, what="reader polling")
        module.present(SimCard(number=GOOD, name="张三丰"))
        wait_for(lambda: reads, 5, what="first read")
        polls = module.requests
        wait_for(lambda: module.requests > polls + 5, 5)  # the card stays on the reader...
        assert len(reads) == 1  # ...and is not reported again
        assert reads[0].to_json() == {
            "kind": "id_card",
            "token": spec_token("id_card", GOOD),
            "masked": "1101**********002X",
            "name_masked": "张**",
            "valid": True,
        }
        module.remove()
        module.present(SimCard(number=GOOD))
        wait_for(lambda: len(reads) == 2, 5, what="second presentation")
    finally:
        r.stop()


def test_wrong_check_digit_is_one_read_with_a_problem_and_no_token(
    pty, classifier, sam_server
) -> None:
    module = SamModule()
    sam_server(pty.master, module)
    reads = []
    r = fast_reader(pty.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=BAD_CHECK))
        wait_for(lambda: module.requests > 10, 5)
        assert [x.to_json() for x in reads] == [
            {
                "kind": "id_card",
                "token": None,
                "masked": "",
                "name_masked": None,
                "valid": False,
                "problem": "check_digit",
            }
        ]
        module.remove()
        module.present(SimCard(number=GOOD))
        wait_for(lambda: len(reads) == 2, 5)
        assert reads[1].masked == "1101**********002X"
    finally:
        r.stop()


def test_card_pulled_mid_read_and_bad_checksum_are_reads_with_a_problem_once(
    pty, classifier, sam_server
) -> None:
    module = SamModule()
    sam_server(pty.master, module)
    reads = []
    # A reply cut short is noticed when its bytes stop, not at the (here huge) reply timeout.
    r = IdCardReader(
        pty.path, 115200, classifier, poll_every=0.05, reply_timeout=30, reopen_every=0.1
    )
    r.start(reads.append)
    try:
        module.inject("pulled")
        module.present(SimCard(number=GOOD))
        wait_for(lambda: reads, 5, what="pulled card reported")
        assert reads[0].problem == "incomplete" and reads[0].token is None
        assert not reads[0].valid and reads[0].masked == "" and r._session.bad_reads == 1
        polls = module.requests
        wait_for(lambda: module.requests > polls + 2, 5)  # the reader has seen the card gone
        module.inject("bad_checksum")
        module.present(SimCard(number=GOOD))
        wait_for(lambda: len(reads) == 2, 5, what="bad checksum reported")
        assert reads[1].problem == "incomplete"
        polls = module.requests
        wait_for(lambda: module.requests > polls + 5, 5)  # the card stays on the reader...
        assert len(reads) == 2  # ...and the failure is not reported again
        module.remove()
        module.present(SimCard(number=GOOD))
        wait_for(lambda: len(reads) == 3, 5, what="a clean read afterwards")
        assert reads[2].problem is None and reads[2].token == spec_token("id_card", GOOD)
    finally:
        r.stop()


def test_a_read_failing_at_every_poll_is_reported_once_until_the_card_leaves(classifier) -> None:
    from drivers.card_reader import sam_protocol as sam
    from drivers.card_reader.idcard import SamSession

    module = SamModule()
    module.present(SimCard(number=GOOD))

    def flaky(request: bytes) -> sam.Frame | None:
        reply = module.respond(request)
        if request == sam.read_request():
            return None  # the read never completes (a card at the edge of the field)
        parser = sam.FrameParser()
        frames = parser.feed(reply)
        return frames[0] if frames else None

    session = SamSession(flaky, classifier)
    got = [session.poll() for _ in range(5)]
    assert [x.problem if x else None for x in got] == ["incomplete", None, None, None, None]
    module.remove()
    assert session.poll() is None  # no card: it left
    module.present(SimCard(number=GOOD))
    assert session.poll().problem == "incomplete"  # a new presentation: said again


def test_expired_card_is_reported_invalid(pty, classifier, sam_server) -> None:
    module = SamModule()
    sam_server(pty.master, module)
    reads = []
    r = fast_reader(pty.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=GOOD, valid_to="20200101"))
        wait_for(lambda: reads, 5)
        assert reads[0].valid is False
    finally:
        r.stop()


def test_silent_module_is_an_error_and_recovers(pty, classifier, sam_server) -> None:
    reads = []
    r = fast_reader(pty.path, classifier)
    r.start(reads.append)
    try:
        wait_for(lambda: r.state == DeviceState.ERROR, 5, what="no answer noticed")
        assert "no answer" in r.detail
        module = SamModule()
        sam_server(pty.master, module)
        wait_for(lambda: r.state == DeviceState.OK, 5)
        module.present(SimCard(number=GOOD))
        wait_for(lambda: reads, 5)
    finally:
        r.stop()


def test_unplug_and_replug(plugged_pty, classifier, sam_server) -> None:
    port = plugged_pty("usb-1a86_USB2.0-Ser_-if00-port0")
    module = SamModule()
    first = sam_server(port.pty.master, module)
    reads = []
    r = fast_reader(port.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=GOOD))
        wait_for(lambda: reads, 5)
        first.stop()  # before the fd closes: a replugged pty may reuse its number
        port.unplug()
        wait_for(lambda: r.state == DeviceState.ABSENT, 5, what="unplug noticed")
        port.plug()
        sam_server(port.pty.master, module)
        module.remove()
        module.present(SimCard(number=GOOD))
        wait_for(lambda: len(reads) == 2, 5, what="read after replug")
        assert r.state == DeviceState.OK
    finally:
        r.stop()


def test_simulated_reader_uses_the_protocol_and_its_faults(classifier) -> None:
    reads = []
    r = SimulatedCardReader(classifier)
    r.start(reads.append)
    try:
        r.present("id_card", GOOD, "张三")
        r.inject("pulled")
        r.present("id_card", GOOD)
        r.inject("bad_checksum")
        r.present("id_card", GOOD)
        r.present("id_card", BAD_CHECK)
        r.present("staff_card", "1024")
        r.present("appointment_qr", "A20261123-0042")
        r.inject("pulled")
        r.present("medical_card", "6225880112345678")
        wait_for(lambda: r._jobs.empty() and len(reads) >= 6, 5)
        time.sleep(0.1)
        assert [(x.kind, x.problem) for x in reads] == [
            ("id_card", None),
            ("id_card", "incomplete"),
            ("id_card", "incomplete"),
            ("id_card", "check_digit"),
            ("staff_card", None),
            ("appointment_qr", None),
        ]
        assert reads[0].name_masked == "张*"
        assert reads[4].token == spec_token("staff_card", "1024")
        assert reads[5].appointment == "A20261123-0042"
        with pytest.raises(ValueError):
            r.present("library_card", "123")
    finally:
        r.stop()


def test_no_number_or_name_in_the_logs(pty, classifier, sam_server, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    module = SamModule()
    sam_server(pty.master, module)
    reads = []
    r = fast_reader(pty.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=BAD_CHECK, name="李四光"))
        wait_for(lambda: module.requests > 6, 5)
        module.remove()
        module.inject("pulled")
        module.present(SimCard(number=GOOD, name="张三丰"))
        wait_for(lambda: r._session.bad_reads >= 1, 5)
        module.present(SimCard(number=GOOD, name="张三丰"))
        wait_for(lambda: reads, 5)
    finally:
        r.stop()
    for secret in (GOOD, BAD_CHECK, "李四光", "张三丰", GOOD[6:14]):
        assert secret not in caplog.text
    assert "check digit" in caplog.text
