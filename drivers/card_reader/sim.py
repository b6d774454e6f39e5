"""Simulated card readers: a SAM module that speaks SPEC 6.3, and the reader `careterm demo` uses.

Faults are part of the fakes (one-shot, armed with `inject`):
- `"pulled"`: the card leaves the field between select and read (the read reply is cut short;
  a line is cut);
- `"bad_checksum"`: the read reply arrives with a wrong checksum byte.
An ID card presentation lost to either is reported as a read with `problem="incomplete"` (by the
real `SamSession`); another kind's is lost (a cut line never reaches the classifier).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import threading
from dataclasses import dataclass

from drivers.base import DeviceState
from drivers.card_reader import sam_protocol as sam
from drivers.card_reader.base import CARD_KINDS, CardRead, CardReader, ReadListener
from drivers.card_reader.classify import Classifier
from drivers.card_reader.idcard import SamSession

log = logging.getLogger("careterm.drivers.sim")

FAULTS = ("pulled", "bad_checksum")


@dataclass(frozen=True)
class SimCard:
    number: str
    name: str = "张三"
    gender: str = "1"
    nation: str = "01"
    birth: str = ""
    address: str = "北京市东城区某某路1号"
    issuer: str = "北京市公安局东城分局"
    valid_from: str = "20200101"
    valid_to: str = "20400101"

    def text(self) -> bytes:
        return sam.encode_text(
            {
                "name": self.name,
                "gender": self.gender,
                "nation": self.nation,
                "birth": self.birth or self.number[6:14],
                "address": self.address,
                "number": self.number,
                "issuer": self.issuer,
                "valid_from": self.valid_from,
                "valid_to": self.valid_to,
            }
        )


class SamModule:
    """The module's side of the protocol: answers request frames like the hardware does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.card: SimCard | None = None
        self._read_done = False  # a card already read is not found again until it leaves
        self._faults: list[str] = []
        self.requests = 0

    def present(self, card: SimCard) -> None:
        with self._lock:
            self.card, self._read_done = card, False

    def remove(self) -> None:
        with self._lock:
            self.card, self._read_done = None, False

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append(fault)

    def respond(self, request: bytes) -> bytes:
        """The reply bytes for one request frame; b"" when the module stays silent."""
        try:
            frame = sam.parse_frame(request)
        except sam.FrameError:
            return b""
        with self._lock:
            self.requests += 1
            cmd = frame.body[:2]
            if cmd == sam.CMD_FIND:
                if self.card is None or self._read_done:
                    return sam.response_frame(sam.SW_NO_CARD)
                return sam.response_frame(sam.SW_FIND_OK, b"\x00\x00\x00\x00")
            if cmd == sam.CMD_SELECT:
                if self.card is None:
                    return sam.response_frame(sam.SW_SELECT_FAILED)
                return sam.response_frame(sam.SW_OK, b"\x00\x00\x00\x00\x00\x00\x00\x00")
            if cmd == sam.CMD_READ:
                if self.card is None:
                    return sam.response_frame(sam.SW_NO_CARD)
                if "pulled" in self._faults:
                    self._faults.remove("pulled")
                    card, self.card = self.card, None
                    # the first part of the reply got out before the card left
                    return sam.read_reply(card.text())[:300]
                reply = bytearray(sam.read_reply(self.card.text()))
                if "bad_checksum" in self._faults:
                    self._faults.remove("bad_checksum")
                    reply[-1] ^= 0x5A
                    # the module reports the read done anyway: the card must be presented again
                self._read_done = True
                return bytes(reply)
            return b""

    def serve(self, fd: int, stop: threading.Event) -> None:
        """Answer requests arriving on `fd` (e.g. a pty master) until `stop` is set."""
        parser_buf = bytearray()
        while not stop.is_set():
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                parser_buf += os.read(fd, 4096)
            except OSError:
                return
            while True:
                i = parser_buf.find(sam.PREAMBLE)
                if i < 0 or len(parser_buf) < i + 7:
                    break
                n = int.from_bytes(parser_buf[i + 5 : i + 7], "big")
                if len(parser_buf) < i + 7 + n:
                    break
                request = bytes(parser_buf[i : i + 7 + n])
                del parser_buf[: i + 7 + n]
                reply = self.respond(request)
                if reply:
                    try:
                        os.write(fd, reply)
                    except OSError:
                        return


class SimulatedCardReader(CardReader):
    """`present(kind, number, name=None)` delivers a read on the reader's thread.

    ID cards go through `SamModule` frames and the real `SamSession`; other kinds go
    through the classifier's SPEC 6.4 shaping. Faults (`inject`) apply to the next card.
    `cards` are the cards a demo screen offers as buttons (dicts with kind, number, name,
    label), read from the JSON file `careterm demo` names as the reader's device.
    """

    def __init__(self, classifier: Classifier, cards: list[dict[str, str]] | None = None) -> None:
        super().__init__("card_reader")
        self._classifier = classifier
        self.cards = list(cards or [])
        self.module = SamModule()
        self._session = SamSession(self._transact, classifier)
        self._parser = sam.FrameParser()
        self._jobs: queue.Queue[tuple[str, str, str | None, list[str]] | None] = queue.Queue()
        self._faults: list[str] = []
        self._listener: ReadListener | None = None
        self._thread: threading.Thread | None = None
        self.presented = 0
        self.reported = 0

    def start(self, on_read: ReadListener) -> None:
        self._listener = on_read
        self._thread = threading.Thread(target=self._run, name="card-sim", daemon=True)
        self._thread.start()
        self._set_state(DeviceState.OK, "simulated")

    def stop(self) -> None:
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(2.0)

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._faults.append(fault)

    def present(self, kind: str, number: str, name: str | None = None) -> None:
        if kind not in CARD_KINDS:
            raise ValueError(f"unknown card kind {kind!r}; one of {', '.join(CARD_KINDS)}")
        self.presented += 1
        faults, self._faults = self._faults, []  # armed faults belong to this presentation
        self._jobs.put((kind, number, name, faults))

    @staticmethod
    def load_cards(path: str) -> list[dict[str, str]]:
        """The demo cards file; a missing or malformed file offers no buttons (logged)."""
        try:
            with open(path, encoding="utf-8") as f:
                cards = json.load(f)
        except (OSError, ValueError) as e:
            log.warning("card sim: no demo cards from %s: %s", path, e)
            return []
        keys = ("kind", "number", "name", "label")
        ok = (
            [
                c
                for c in cards
                if isinstance(cards, list)
                if isinstance(c, dict)
                and all(isinstance(c.get(k), str) for k in keys)
                and c["kind"] in CARD_KINDS
            ]
            if isinstance(cards, list)
            else []
        )
        return [{k: c[k] for k in keys} for c in ok]

    def _transact(self, request: bytes) -> sam.Frame | None:
        self._parser.reset()
        frames = self._parser.feed(self.module.respond(request))
        return frames[0] if frames else None

    def _read_one(
        self, kind: str, number: str, name: str | None, faults: list[str]
    ) -> CardRead | None:
        if kind == "id_card":
            self.module.present(SimCard(number=number, name=name or "张三"))
            for f in faults:
                self.module.inject(f)
            try:
                return self._session.poll()
            finally:
                self.module.remove()
                self._session.card_left()
        if "pulled" in faults or "bad_checksum" in faults:
            log.info("card sim: %s presentation lost to an injected fault", kind)
            return None
        return self._classifier.read_for(kind, number, name)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                read = self._read_one(*job)
            except Exception:
                log.exception("card sim: presentation failed")
                continue
            if read is not None and self._listener is not None:
                self.reported += 1
                try:
                    self._listener(read)
                except Exception:
                    log.exception("card sim: read listener failed")
