"""HID keyboard-wedge readers (magstripe, hospital card, QR scanners in keyboard mode), SPEC 6.2.

The device is grabbed so its keystrokes never reach the kiosk window; key events become
lines in `WedgeDecoder` (pure), lines become reads in the classifier.
"""

from __future__ import annotations

import logging
import time

from drivers.card_reader.base import CardReader, ReadListener, unreadable
from drivers.card_reader.classify import Classifier
from drivers.card_reader.line_reader import check_line, double_sends, is_noise
from drivers.evdev_device import EvdevDevice
from drivers.input_events import InputEvent, WedgeDecoder

log = logging.getLogger("careterm.drivers.wedge")


class EvdevLineReader(CardReader):
    def __init__(
        self, path: str, classifier: Classifier, *, grab: bool = True, reopen_every: float = 1.0
    ) -> None:
        super().__init__("card_reader")
        self.path = path
        self._classifier = classifier
        self._decoder = WedgeDecoder()
        self._repeats = double_sends()
        self._listener: ReadListener | None = None
        self.device = EvdevDevice(
            "card_reader device",
            path,
            self._on_event,
            grab=grab,
            reopen_every=reopen_every,
            quiet=True,
        )
        self.device.on_state(lambda st, detail: self._set_state(st, detail))

    def start(self, on_read: ReadListener) -> None:
        self._listener = on_read
        self.device.start()

    def stop(self) -> None:
        self.device.stop()

    def _on_event(self, ev: InputEvent) -> None:
        rejected = self._decoder.rejected
        line = self._decoder.feed(ev)
        if line is None:
            if self._decoder.rejected == rejected:
                return  # no line ended with this event
            read = unreadable()  # a line rejected whole: too long, a key with no character
        elif is_noise(line.encode()):
            return
        elif why := check_line(line):
            log.info("card reader: line rejected (%s)", why)
            read = unreadable()
        else:
            read = self._classifier.classify_or_reject(line)
        if not self._repeats.fresh(read, time.monotonic()):
            return
        if self._listener is not None:
            self._listener(read)
