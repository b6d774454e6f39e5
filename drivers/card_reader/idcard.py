"""Second-generation ID card reader on a serial port: polls find / select / read (SPEC 6.3).

`SamSession` is the transaction logic over any `transact(request) -> Frame | None`; the serial
reader and the simulator both drive it, so the simulator exercises the real protocol code.
"""

from __future__ import annotations

import hashlib
import logging
import termios
import threading
import time
from collections.abc import Callable

import serial

from drivers.base import DeviceState, resolve_device
from drivers.card_reader import sam_protocol as sam
from drivers.card_reader.base import CardRead, CardReader, ReadListener
from drivers.card_reader.classify import Classifier

log = logging.getLogger("careterm.drivers.idcard")

POLL_EVERY_S = 0.25
REPLY_TIMEOUT_S = 0.6  # the 1295-byte read reply takes ~0.11 s at 115200 baud
REOPEN_EVERY_S = 1.0
SILENT_POLLS_BEFORE_ERROR = 3

Transact = Callable[[bytes], "sam.Frame | None"]


class NoAnswer(Exception):
    """The module did not answer a request in time (unplugged, powered off, wrong baud rate)."""


class SamSession:
    """One poll = find, then select and read when a card is there; one report per presentation."""

    def __init__(self, transact: Transact, classifier: Classifier) -> None:
        self._transact = transact
        self._classifier = classifier
        self._current: bytes | None = None  # a hash of the card on the reader, never the number
        self.bad_reads = 0

    def _ask(self, request: bytes) -> sam.Frame:
        frame = self._transact(request)
        if frame is None:
            raise NoAnswer()
        return frame

    def card_left(self) -> None:
        self._current = None

    def poll(self) -> CardRead | None:
        found = self._ask(sam.find_request())
        if found.status != sam.SW_FIND_OK:
            # 80 "no card" also comes back for a card already read and still in the field:
            # that card cannot be found again until it has left and come back.
            self._current = None
            return None
        if self._ask(sam.select_request()).status != sam.SW_OK:
            return None
        reply = self._transact(sam.read_request())
        if reply is None or reply.status != sam.SW_OK:
            self.bad_reads += 1
            log.info(
                "idcard: read failed (card pulled away or reply damaged); waiting for it again"
            )
            return None
        try:
            text_raw, _photo = sam.split_read_data(reply.data)
            text = sam.decode_text(text_raw)
        except sam.FrameError as e:
            self.bad_reads += 1
            log.info("idcard: unreadable card data: %s", e)
            return None
        seen = hashlib.sha256(text.number.encode("utf-8", "replace")).digest()
        if seen == self._current:
            return None
        self._current = seen
        return self._classifier.id_card(text)


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
        self.poll_every = poll_every
        self.reply_timeout = reply_timeout
        self.reopen_every = reopen_every
        self._session = SamSession(self._transact, classifier)
        self._parser = sam.FrameParser()
        self._port: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: ReadListener | None = None

    def start(self, on_read: ReadListener) -> None:
        self._listener = on_read
        self._thread = threading.Thread(target=self._run, name="idcard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3.0)
        self._close()

    def _open(self) -> bool:
        real = resolve_device(self.path)
        try:
            self._port = serial.Serial(
                real, self.baudrate, timeout=min(0.05, self.reply_timeout), write_timeout=1.0
            )
        except (serial.SerialException, OSError, ValueError) as e:
            self._set_state(DeviceState.ABSENT, f"{self.path}: {e}")
            return False
        self._parser.reset()
        self._session.card_left()
        self._set_state(
            DeviceState.OK, self.path if real == self.path else f"{self.path} -> {real}"
        )
        return True

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
        while time.monotonic() < deadline and not self._stop.is_set():
            data = port.read(max(1, min(port.in_waiting, 4096)))
            if not data:
                continue
            frames = self._parser.feed(data)
            if frames:
                return frames[0]
        return None

    def _run(self) -> None:
        silent = 0
        while not self._stop.is_set():
            if self._port is None and not self._open():
                self._stop.wait(self.reopen_every)
                continue
            try:
                read = self._session.poll()
                silent = 0
                if self.state != DeviceState.OK:
                    self._set_state(DeviceState.OK, self.path)
            except NoAnswer:
                silent += 1
                if silent >= SILENT_POLLS_BEFORE_ERROR:
                    self._set_state(
                        DeviceState.ERROR,
                        f"{self.path}: no answer from the ID card module "
                        f"(power, cable, baudrate {self.baudrate}?)",
                    )
                read = None
            except (serial.SerialException, OSError, TypeError, termios.error) as e:
                # TypeError: pyserial on a vanished pty can fail inside select();
                # termios.error: tcflush on a port whose device is gone.
                log.warning("idcard: %s went away (%s); waiting for it to come back", self.path, e)
                self._set_state(DeviceState.ABSENT, f"{self.path}: unplugged")
                self._close()
                self._stop.wait(self.reopen_every)
                continue
            if read is not None and self._listener is not None:
                try:
                    self._listener(read)
                except Exception:
                    log.exception("idcard: read listener failed")
            self._stop.wait(self.poll_every)
