"""Serial line readers (QR/barcode scanners, magstripe or IC readers in serial mode), SPEC 6.2.

`LineAssembler` is pure: bytes in, lines out. Lines end at CR, LF or CR LF; a line over 512
characters, with control characters, or not UTF-8 is rejected whole, and comes out as None: a
patient scanned something (a QR made in GBK, say) and is told it was not recognised (SPEC
9.6). A line of nothing but control characters and spaces is line noise and comes out as
nothing. A partial line left standing longer than `stale_s` is dropped, so line noise cannot
glue itself to the front of the next real scan.
"""

from __future__ import annotations

import logging
import time

from drivers.card_reader.base import CardReader, ReadListener, unreadable
from drivers.card_reader.classify import Classifier
from drivers.repeat import RepeatFilter
from drivers.serial_port import SerialPort

log = logging.getLogger("careterm.drivers.lines")

MAX_CHARS = 512
MAX_BYTES = MAX_CHARS * 4  # UTF-8 worst case
STALE_S = 0.5
REPEAT_S = 1.0  # scanners often send one code twice in a burst


def check_line(line: str) -> str | None:
    """Why a decoded line is rejected, or None when it is acceptable."""
    if len(line) > MAX_CHARS:
        return f"over {MAX_CHARS} characters"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line):
        return "control characters"
    return None


def is_noise(raw: bytes) -> bool:
    """Bytes no scanner sends for a code: only control characters, spaces and NULs."""
    return all(b <= 0x20 or b == 0x7F for b in raw)


class LineAssembler:
    def __init__(self, stale_s: float = STALE_S) -> None:
        self.stale_s = stale_s
        self._buf = bytearray()
        self._overflow = False
        self._last = 0.0
        self.rejected = 0
        self.noise = 0

    def feed(self, data: bytes, now: float | None = None) -> list[str | None]:
        """The lines `data` completes: a string, or None for a line rejected whole."""
        now = time.monotonic() if now is None else now
        if self._buf and now - self._last > self.stale_s:
            self._buf.clear()
            self._overflow = False
        self._last = now
        out: list[str | None] = []
        for b in data:
            if b in (0x0D, 0x0A):
                if self._buf or self._overflow:
                    out.extend(self._finish())
                continue
            if self._overflow:
                continue
            self._buf.append(b)
            if len(self._buf) > MAX_BYTES:
                self._overflow = True
                self._buf.clear()
        return out

    def _finish(self) -> list[str | None]:
        """The line in the buffer: [line], [None] when rejected, [] when it is noise."""
        raw, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        if overflow:
            return self._reject(f"over {MAX_CHARS} characters")
        if is_noise(raw):
            self.noise += 1
            return []
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._reject("not UTF-8")
        why = check_line(line)
        if why:
            return self._reject(why)
        return [line]

    def _reject(self, why: str) -> list[str | None]:
        self.rejected += 1
        log.info("card reader: line rejected (%s)", why)
        return [None]


def double_sends() -> RepeatFilter:
    """The same read again within `REPEAT_S` with nothing between is a scanner's double send."""
    return RepeatFilter(REPEAT_S, per_key=False)


class SerialLineReader(CardReader):
    def __init__(self, path: str, baudrate: int, classifier: Classifier) -> None:
        super().__init__("card_reader")
        self.path = path
        self._classifier = classifier
        self._lines = LineAssembler()
        self._repeats = double_sends()
        self._listener: ReadListener | None = None
        self._port = SerialPort("card_reader port", path, baudrate, self._on_bytes, quiet=True)
        self._port.on_state(lambda st, detail: self._set_state(st, detail))

    def start(self, on_read: ReadListener) -> None:
        self._listener = on_read
        self._port.start()

    def stop(self) -> None:
        self._port.stop()

    def _on_bytes(self, data: bytes) -> None:
        now = time.monotonic()
        for line in self._lines.feed(data, now):
            read = unreadable() if line is None else self._classifier.classify_or_reject(line)
            if not self._repeats.fresh(read, now):
                continue
            if self._listener is not None:
                self._listener(read)
