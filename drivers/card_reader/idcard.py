"""Second-generation ID card reader on a serial port: polls find / select / read (SPEC 6.3).

`SamSession` is the transaction logic over any `transact(request) -> Frame | None`; the serial
reader and the simulator both drive it, so the simulator exercises the real protocol code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

import serial

from drivers.base import DeviceState
from drivers.card_reader import sam_protocol as sam
from drivers.card_reader.base import CardRead, CardReader, ReadListener
from drivers.card_reader.classify import Classifier
from drivers.reopening import REOPEN_EVERY_S, DeviceGone, ReopeningPort
from drivers.serial_port import SERIAL_GONE, open_serial

log = logging.getLogger("careterm.drivers.idcard")

POLL_EVERY_S = 0.25
REPLY_TIMEOUT_S = 0.6  # the 1295-byte read reply takes ~0.11 s at 115200 baud
REPLY_GAP_S = 0.05
"""A reply that stops mid-frame this long is cut short (the card left): at 115200 baud bytes
come every 0.1 ms, so the patient hears of it at once rather than after REPLY_TIMEOUT_S."""
SILENT_POLLS_BEFORE_ERROR = 3

Transact = Callable[[bytes], "sam.Frame | None"]


class NoAnswer(Exception):
    """The module did not answer a request in time (unplugged, powered off, wrong baud rate)."""


class SamSession:
    """One poll = find, then select and read when a card is there; one report per presentation."""

    def __init__(self, transact: Transact, classifier: Classifier) -> None:
        self._transact = transact
        self._classifier = classifier
        self._current: bytes | None = None
        """The card on the reader: a keyed hash (the site salt), never the number nor a plain
        hash of it (an ID number's few billion values are guessed back from a SHA-256)."""
        self._failed = False  # an incomplete read of the card in the field was reported
        self.bad_reads = 0

    def _ask(self, request: bytes) -> sam.Frame:
        frame = self._transact(request)
        if frame is None:
            raise NoAnswer()
        return frame

    def card_left(self) -> None:
        self._current = None
        self._failed = False

    def poll(self) -> CardRead | None:
        found = self._ask(sam.find_request())
        if found.status != sam.SW_FIND_OK:
            # 80 "no card" also comes back for a card already read and still in the field:
            # that card cannot be found again until it has left and come back.
            self.card_left()
            return None
        if self._ask(sam.select_request()).status != sam.SW_OK:
            return None
        reply = self._transact(sam.read_request())
        if reply is None or reply.status != sam.SW_OK:
            self.bad_reads += 1
            log.info("idcard: read failed (card pulled away or reply damaged)")
            return self._incomplete()
        try:
            text_raw, _photo = sam.split_read_data(reply.data)
            text = sam.decode_text(text_raw)
        except sam.FrameError as e:
            self.bad_reads += 1
            log.info("idcard: unreadable card data: %s", e)
            return self._incomplete()
        self._failed = False
        seen = hmac.new(
            self._classifier.salt, text.number.encode("utf-8", "replace"), hashlib.sha256
        ).digest()
        if seen == self._current:
            return None
        self._current = seen
        read = self._classifier.id_card(text)
        if read is None:  # the check character is wrong: a misread, said once for this card
            return CardRead("id_card", None, "", valid=False, problem="check_digit")
        return read

    def _incomplete(self) -> CardRead | None:
        """A read that failed midway, reported once until a good read or the card leaves: the
        patient is asked to place the card again (it is read again when found again). Not
        reported for a card already read and still in the field (a module that keeps finding
        it): that patient's read went through."""
        if self._failed or self._current is not None:
            return None
        self._failed = True
        return CardRead("id_card", None, "", valid=False, problem="incomplete")


class SamPort(ReopeningPort):
    """The serial port of the SAM module: each step is one poll of the session."""

    def __init__(
        self,
        path: str,
        baudrate: int,
        session_for: Callable[[Transact], SamSession],
        on_read: Callable[[CardRead], None],
        *,
        poll_every: float,
        reply_timeout: float,
        reopen_every: float,
    ) -> None:
        super().__init__(
            "card_reader port", path, reopen_every=reopen_every, quiet=True, thread_name="idcard"
        )
        self.baudrate = baudrate
        self.poll_every = poll_every
        self.reply_timeout = reply_timeout
        self.session = session_for(self._transact)
        self._on_read = on_read
        self._parser = sam.FrameParser()
        self._port: serial.Serial | None = None
        self._silent = 0

    def _open(self, real: str) -> None:
        self._port = open_serial(
            real, self.baudrate, timeout=min(0.05, self.reply_timeout), write_timeout=1.0
        )
        self._parser.reset()
        self.session.card_left()
        self._silent = 0

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _transact(self, request: bytes) -> sam.Frame | None:
        port = self._port
        if port is None:
            return None
        port.reset_input_buffer()
        self._parser.reset()
        port.write(request)
        deadline = time.monotonic() + self.reply_timeout
        rejected = self._parser.rejected
        last: float | None = None  # when the last byte of this reply came
        while time.monotonic() < deadline and not self.stopping:
            data = port.read(max(1, min(port.in_waiting, 4096)))
            if not data:
                # only a frame that started (and stopped, or was damaged) ends the wait
                # early; line noise before the reply (a glitch) must not start that clock
                framed = self._parser.in_frame or self._parser.rejected > rejected
                if last is not None and framed and time.monotonic() - last > REPLY_GAP_S:
                    return None  # the reply stopped midway or was damaged: cut short
                continue
            last = time.monotonic()
            frames = self._parser.feed(data)
            if frames:
                return frames[0]
        return None

    def _serve(self) -> None:
        try:
            read = self.session.poll()
        except NoAnswer:
            self._silent += 1
            if self._silent >= SILENT_POLLS_BEFORE_ERROR:
                self._set_state(
                    DeviceState.ERROR,
                    f"{self.path}: no answer from the ID card module "
                    f"(power, cable, baudrate {self.baudrate}?)",
                )
            read = None
        except SERIAL_GONE as e:
            raise DeviceGone(str(e)) from None
        else:
            self._silent = 0
            if self.state != DeviceState.OK:
                self._set_state(DeviceState.OK, self.path)
        if read is not None:
            try:
                self._on_read(read)
            except Exception:
                log.exception("idcard: read listener failed")
        self._stop.wait(self.poll_every)


class IdCardReader(CardReader):
    """The SAM module on `path` (a /dev/serial/by-id name is re-resolved at every reopen)."""

    def __init__(
        self,
        path: str,
        baudrate: int,
        classifier: Classifier,
        *,
        poll_every: float = POLL_EVERY_S,
        reply_timeout: float = REPLY_TIMEOUT_S,
        reopen_every: float = REOPEN_EVERY_S,
    ) -> None:
        super().__init__("card_reader")
        self.path = path
        self.baudrate = baudrate
        self._listener: ReadListener | None = None
        self.port = SamPort(
            path,
            baudrate,
            lambda transact: SamSession(transact, classifier),
            self._deliver,
            poll_every=poll_every,
            reply_timeout=reply_timeout,
            reopen_every=reopen_every,
        )
        self.port.on_state(self._set_state)
        self._session = self.port.session

    def start(self, on_read: ReadListener) -> None:
        self._listener = on_read
        self.port.start()

    def stop(self) -> None:
        self.port.stop()

    def _deliver(self, read: CardRead) -> None:
        if self._listener is not None:
            self._listener(read)
