"""Serial rating keypad (SPEC 6.1): one ASCII byte per press, the byte is the key's name."""

from __future__ import annotations

import logging
import time

from drivers.buttons.base import Debouncer, KeyListener, KeyPress, KeySource
from drivers.serial_port import SerialPort

log = logging.getLogger("careterm.drivers.keypad")


def decode_key_bytes(data: bytes, known: set[str]) -> list[str]:
    """The key names in a chunk of bytes; bytes not in the map (or not ASCII) are ignored."""
    out = []
    for b in data:
        ch = chr(b) if b < 0x80 else ""
        if ch and ch in known:
            out.append(ch)
    return out


class SerialKeypad(KeySource):
    def __init__(self, path: str, baudrate: int, keys: set[str], debounce_ms: int) -> None:
        super().__init__("buttons")
        self.keys = set(keys)
        self._debouncer = Debouncer(debounce_ms)
        self._listener: KeyListener | None = None
        self._port = SerialPort("buttons port", path, baudrate, self._on_bytes, quiet=True)
        self._port.on_state(lambda st, detail: self._set_state(st, detail))

    def start(self, on_key: KeyListener) -> None:
        self._listener = on_key
        self._port.start()

    def stop(self) -> None:
        self._port.stop()

    def _on_bytes(self, data: bytes) -> None:
        now = time.monotonic()
        names = decode_key_bytes(data, self.keys)
        ignored = len(data) - len(names)
        if ignored:
            log.debug("buttons: ignored %d bytes not in [buttons].keys", ignored)
        for name in names:
            if not self._debouncer.accept(name, now):
                continue
            if self._listener is not None:
                self._listener(KeyPress(name, now))
