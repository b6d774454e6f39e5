"""Patient privacy in the card readers (SPEC 6.4): real readers on ptys, recognisable numbers and
names fed in, and nothing of them anywhere but in the SPEC's masked and tokenised forms."""

from __future__ import annotations

import hashlib
import logging

import pytest

from drivers.card_reader.classify import Classifier
from drivers.card_reader.idcard import IdCardReader
from drivers.card_reader.line_reader import SerialLineReader
from drivers.card_reader.sim import SamModule, SimCard
from tests.conftest import wait_for

ID_NUMBER = "11010519491231002X"
FULL_NAME = "欧阳明月"
MEDICAL = "6222020012345678"
PHONE = "13812345678"


def test_the_id_reader_keeps_no_plain_hash_of_the_number_in_memory(
    pty, classifier: Classifier, sam_server
) -> None:
    """While a card lies on the reader the session remembers it (one report per presentation),
    by a keyed hash: a plain SHA-256 of an ID number is guessed back from its few billion
    possible values (a memory dump, a core file)."""
    module = SamModule()
    sam_server(pty.master, module)
    reads = []
    r = IdCardReader(
        pty.path, 115200, classifier, poll_every=0.05, reply_timeout=0.3, reopen_every=0.1
    )
    r.start(reads.append)
    try:
        module.present(SimCard(number=ID_NUMBER, name=FULL_NAME))
        wait_for(lambda: reads, 5, what="a read")
        held = r._session._current
        assert held is not None
        for form in (ID_NUMBER, ID_NUMBER.lower()):
            assert held != hashlib.sha256(form.encode()).digest()
            assert form.encode() not in held
        polls = module.requests
        wait_for(lambda: module.requests > polls + 5, 5)
        assert len(reads) == 1  # still one report per presentation
    finally:
        r.stop()
    assert ID_NUMBER not in repr(reads) and FULL_NAME not in repr(reads)


def test_a_serial_reader_never_logs_or_reports_what_it_read(
    pty, classifier: Classifier, caplog: pytest.LogCaptureFixture
) -> None:
    """Good reads, a magstripe with the cardholder's name on track 1, a wrong check digit, junk
    with control characters, a line over the limit and text matching no rule: at DEBUG level
    the log says what happened, never the number, the name or the phone."""
    caplog.set_level(logging.DEBUG)
    reads = []
    r = SerialLineReader(pty.path, 115200, classifier)
    r.start(reads.append)
    swipe = f"%B{MEDICAL}^OUYANG/MINGYUE^2812101000000?;{MEDICAL}=2812101?"
    bad = (
        ID_NUMBER[:-1] + "1",
        ID_NUMBER + "\x01",
        (ID_NUMBER + FULL_NAME) * 40,
        f"{FULL_NAME} {ID_NUMBER} {PHONE}",
    )
    # a good read between two rejected ones: the same "unreadable" twice within a second is
    # taken for a scanner's double send
    lines = [swipe, *(x for b in bad for x in (b, ID_NUMBER))]
    try:
        wait_for(lambda: r.state.value == "ok", 5, what="port open")
        for i, line in enumerate(lines):
            pty.write((line + "\r\n").encode())
            wait_for(lambda i=i: len(reads) > i, 5, what=f"read {i}")
    finally:
        r.stop()
    assert [x.kind for x in reads] == ["medical_card", *["unknown", "id_card"] * len(bad)]
    shown = caplog.text + repr(reads) + "".join(str(x.to_json()) for x in reads)
    for secret in (ID_NUMBER, MEDICAL, FULL_NAME, "OUYANG", "MINGYUE", PHONE, "19491231"):
        assert secret not in shown, secret
    assert "check digit" in caplog.text and "control characters" in caplog.text
