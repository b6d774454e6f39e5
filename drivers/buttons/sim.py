"""The simulated keypad (`driver = "keyboard"` / `"sim"`): `press(name)` from a demo screen or a test."""

from __future__ import annotations

import logging
import queue
import threading
import time

from drivers.base import DeviceState
from drivers.buttons.base import KeyListener, KeyPress, KeySource, debouncer

log = logging.getLogger("careterm.drivers.keypad.sim")


class SimulatedKeypad(KeySource):
    """Presses go through the same debounce as hardware and reach the listener on its own thread."""

    def __init__(self, keys: set[str], debounce_ms: int = 0) -> None:
        super().__init__("buttons")
        self.keys = set(keys)
        self._debouncer = debouncer(debounce_ms)
        self._queue: queue.Queue[KeyPress | None] = queue.Queue()
        self._listener: KeyListener | None = None
        self._thread: threading.Thread | None = None
        self.unplugged = False

    def start(self, on_key: KeyListener) -> None:
        self._listener = on_key
        self._thread = threading.Thread(target=self._run, name="keypad-sim", daemon=True)
        self._thread.start()
        self._set_state(DeviceState.OK, "simulated")

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(2.0)

    def press(self, name: str, t: float | None = None) -> bool:
        """Queue a press; False when the name is not in `[buttons].keys` or the pad is unplugged."""
        if name not in self.keys or self.unplugged:
            return False
        self._queue.put(KeyPress(name, time.monotonic() if t is None else t))
        return True

    def unplug(self) -> None:
        """Fault: the keypad goes away (presses are lost) until `replug()`."""
        self.unplugged = True
        self._set_state(DeviceState.ABSENT, "simulated keypad unplugged")

    def replug(self) -> None:
        self.unplugged = False
        self._set_state(DeviceState.OK, "simulated")

    def _run(self) -> None:
        while True:
            press = self._queue.get()
            if press is None:
                return
            if not self._debouncer.fresh(press.key, press.t):
                continue
            if self._listener is not None:
                try:
                    self._listener(press)
                except Exception:
                    log.exception("keypad sim: key listener failed")
