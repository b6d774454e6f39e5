"""Serial rating keypad (SPEC 6.1): one ASCII byte per press, the byte is the key's name."""

from __future__ import annotations

import logging
import time

from drivers.base import DeviceState
from drivers.buttons.base import KeyListener, KeyPress, KeySource, debouncer
from drivers.repeat import RepeatFilter
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


STUCK_S = 10.0
REPEAT_GAP_S = 0.5  # bytes of one key closer than this are one held (auto-repeating) key


class SerialKeypad(KeySource):
    """A held key on these keypads repeats its byte; held past `stuck_s` it is reported stuck
    (state ERROR naming the key) until a pause in its bytes (noticed while the port is idle,
    so a released key clears the fault without a further press) or another key."""

    def __init__(
        self,
        path: str,
        baudrate: int,
        keys: set[str],
        debounce_ms: int,
        *,
        stuck_s: float = STUCK_S,
    ) -> None:
        super().__init__("buttons")
        self.keys = set(keys)
        self.stuck_s = stuck_s
        self._runs = RepeatFilter(REPEAT_GAP_S, per_key=False)
        self._debouncer = debouncer(debounce_ms)
        self._listener: KeyListener | None = None
        self._last_key: float | None = None  # when the last byte of a configured key came
        self._port = SerialPort(
            "buttons port", path, baudrate, self._on_bytes, quiet=True, on_idle=self._idle
        )
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
            self._track_run(name, now)
            if not self._debouncer.fresh(name, now):
                continue
            if self._listener is not None:
                self._listener(KeyPress(name, now))

    def _idle(self) -> None:
        """The port read nothing: a stuck key whose bytes have paused was released."""
        last = self._last_key
        if (
            self.state == DeviceState.ERROR
            and self._port.state == DeviceState.OK
            and last is not None
            and time.monotonic() - last > REPEAT_GAP_S
        ):
            self._set_state(DeviceState.OK, self._port.path)

    def _track_run(self, name: str, now: float) -> None:
        self._last_key = now
        if not self._runs.fresh(name, now):
            started = self._runs.run_started(name) or now
            if now - started > self.stuck_s and self._port.state == DeviceState.OK:
                self._set_state(DeviceState.ERROR, f"{self._port.path}: key {name!r} stuck")
            return
        if self.state == DeviceState.ERROR and self._port.state == DeviceState.OK:
            self._set_state(DeviceState.OK, self._port.path)
