"""The ID card reader against a misbehaving SAM module (SPEC 6.3) over a pty: noise before a
reply, a module that keeps finding a card already read, odd card data."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterator

import pytest

from drivers.card_reader import sam_protocol as sam
from drivers.card_reader.idcard import IdCardReader
from drivers.card_reader.sim import SamModule, SimCard
from tests.conftest import wait_for
from tests.drivers.test_classify import spec_token

GOOD = "11010519491231002X"

# (pause before, bytes) pieces of one reply; None: the module answers as usual
Plan = list[tuple[float, bytes]] | None


class ScriptedModule(SamModule):
    """A `SamModule` whose replies a test can replace, split and delay (the module's own
    timing, not a guess at the reader's)."""

    def __init__(self, script: Callable[[ScriptedModule, bytes], Plan]) -> None:
        super().__init__()
        self.script = script
        self.reads = 0  # read requests seen

    def serve(self, fd: int, stop: threading.Event) -> None:
        buf = bytearray()
        while not stop.is_set():
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                buf += os.read(fd, 4096)
            except OSError:
                return
            while (i := buf.find(sam.PREAMBLE)) >= 0 and len(buf) >= i + 7:
                n = int.from_bytes(buf[i + 5 : i + 7], "big")
                if len(buf) < i + 7 + n:
                    break
                request = bytes(buf[i : i + 7 + n])
                del buf[: i + 7 + n]
                cmd = request[7:9]
                if cmd == sam.CMD_READ:
                    self.reads += 1
                plan = self.script(self, cmd)
                if plan is None:
                    plan = [(0.0, self.respond(request))]
                else:
                    with self._lock:
                        self.requests += 1
                for pause, data in plan:
                    if pause:
                        stop.wait(pause)
                    try:
                        os.write(fd, data)
                    except OSError:
                        return


@pytest.fixture
def scripted(pty) -> Iterator[Callable[[Callable[[ScriptedModule, bytes], Plan]], ScriptedModule]]:
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def make(script: Callable[[ScriptedModule, bytes], Plan]) -> ScriptedModule:
        module = ScriptedModule(script)
        stop = threading.Event()
        t = threading.Thread(target=module.serve, args=(pty.master, stop), daemon=True)
        t.start()
        stops.append((stop, t))
        return module

    yield make
    for stop, t in stops:
        stop.set()
        t.join(2)


def reader(path: str, classifier) -> IdCardReader:
    # a reply timeout far beyond any pause below: only the reader's own logic can cut a reply
    return IdCardReader(path, 115200, classifier, poll_every=0.05, reply_timeout=30)


def test_a_noise_byte_before_a_slow_reply_does_not_cut_the_reply_short(
    pty, classifier, scripted
) -> None:
    """A glitch byte, then the module's read reply 0.2 s later (reading a card takes time):
    the noise must not start the 50 ms "reply stopped midway" clock."""

    def script(m: ScriptedModule, cmd: bytes) -> Plan:
        if cmd == sam.CMD_READ and m.card is not None:
            reply = m.respond(sam.read_request())
            return [(0.0, b"\x00"), (0.2, reply)]
        return None

    module = scripted(script)
    reads = []
    r = reader(pty.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=GOOD))
        wait_for(lambda: reads, 10, what="the read")
        assert reads[0].problem is None and reads[0].token == spec_token("id_card", GOOD)
        assert r._session.bad_reads == 0
    finally:
        r.stop()


def test_a_card_already_read_is_not_reported_incomplete_by_a_later_damaged_read(
    pty, classifier, scripted
) -> None:
    """Some modules find a card left on them at every poll; the session reads it again and
    keeps quiet (same card). One damaged reply then must not tell that patient to place the
    card again: their read went through."""

    def script(m: ScriptedModule, cmd: bytes) -> Plan:
        if m.card is None:
            return None
        if cmd == sam.CMD_FIND:
            return [(0.0, sam.response_frame(sam.SW_FIND_OK, b"\x00\x00\x00\x00"))]
        if cmd == sam.CMD_READ:
            reply = bytearray(sam.read_reply(m.card.text()))
            if m.reads == 3:
                reply[-1] ^= 0x5A
            return [(0.0, bytes(reply))]
        return None

    module = scripted(script)
    reads = []
    r = reader(pty.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=GOOD))
        wait_for(lambda: module.reads >= 6, 10, what="the card read again and again")
        assert [x.problem for x in reads] == [None]
        assert r._session.bad_reads == 1
        module.remove()
        polls = module.requests
        wait_for(lambda: module.requests > polls + 2, 10)  # the reader has seen it leave
        module.present(SimCard(number=GOOD))
        wait_for(lambda: len(reads) == 2, 10, what="the next presentation")
        assert reads[1].problem is None
    finally:
        r.stop()


def test_odd_card_data_still_gives_the_read(pty, classifier, scripted) -> None:
    """A rare character as a surrogate pair in the name, and a module that leaves out the
    photo its header announces: the ID number is intact, so the card is read."""

    def script(m: ScriptedModule, cmd: bytes) -> Plan:
        if cmd == sam.CMD_READ and m.card is not None:
            text = bytearray(m.card.text())
            text[0:4] = "𠀀".encode("utf-16-le")
            m._read_done = True
            data = (256).to_bytes(2, "big") + (1024).to_bytes(2, "big") + bytes(text)
            return [(0.0, sam.response_frame(sam.SW_OK, data))]
        return None

    module = scripted(script)
    reads = []
    r = reader(pty.path, classifier)
    r.start(reads.append)
    try:
        module.present(SimCard(number=GOOD, name="张三丰"))
        wait_for(lambda: reads, 10, what="the read")
        assert reads[0].problem is None and reads[0].token == spec_token("id_card", GOOD)
        assert reads[0].name_masked == "𠀀*"  # "张三" gave way to one rare character
    finally:
        r.stop()
