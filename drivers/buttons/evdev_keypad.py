"""HID rating keypads via evdev (`[buttons].keys` names such as `KEY_1`, `KEY_KP4`), grabbed.

`KeypadDecoder` is pure: press events (value 1) of configured keys become presses;
auto-repeat (value 2) is ignored; a key held longer than `stuck_s` is reported stuck (the
device state turns ERROR) and gives no press until it is released. For convenience a key
configured by its character ("1", "P") also matches `KEY_1`, `KEY_KP1`, `KEY_P`.
"""

from __future__ import annotations

import logging
import time

from drivers.base import DeviceState
from drivers.buttons.base import KeyListener, KeyPress, KeySource, debouncer
from drivers.evdev_device import EvdevDevice
from drivers.input_events import EV_KEY, EV_SYN, KEY_CHARS, PRESS, RELEASE, SYN_DROPPED, InputEvent

log = logging.getLogger("careterm.drivers.keypad.evdev")

STUCK_S = 10.0


def configured_name(key: str, names: set[str]) -> str | None:
    if key in names:
        return key
    pair = KEY_CHARS.get(key)
    if pair is not None and pair[0].upper() in names:
        return pair[0].upper()
    return None


class KeypadDecoder:
    def __init__(self, names: set[str], stuck_s: float = STUCK_S) -> None:
        self.names = set(names)
        self.stuck_s = stuck_s
        self._held: dict[str, float] = {}
        self.stuck: set[str] = set()

    def feed(self, ev: InputEvent) -> str | None:
        """The configured name of a newly pressed key, else None."""
        if ev.type == EV_SYN and ev.code == SYN_DROPPED:
            # releases may have been lost: forget what was held rather than call it stuck
            self._held.clear()
            self.stuck.clear()
            return None
        if ev.type != EV_KEY:
            return None
        name = configured_name(ev.key, self.names)
        if name is None:
            return None
        if ev.value == RELEASE:
            self._held.pop(name, None)
            self.stuck.discard(name)
            return None
        if ev.value != PRESS:
            return None  # auto-repeat of a held key
        if name in self.stuck:
            return None
        self._held[name] = ev.t
        return name

    def check_stuck(self, now: float) -> set[str]:
        """Keys held past `stuck_s` (event clock); they stay stuck until released."""
        for name, since in self._held.items():
            if now - since > self.stuck_s:
                self.stuck.add(name)
        return set(self.stuck)


class EvdevKeypad(KeySource):
    def __init__(
        self,
        path: str,
        keys: set[str],
        debounce_ms: int,
        *,
        grab: bool = True,
        reopen_every: float = 1.0,
        stuck_s: float = STUCK_S,
    ) -> None:
        super().__init__("buttons")
        self.path = path
        self.keys = set(keys)
        self._decoder = KeypadDecoder(self.keys, stuck_s)
        self._debouncer = debouncer(debounce_ms)
        self._listener: KeyListener | None = None
        # event times are wall clock (kernel timeval); the stuck check compares against it
        self.device = EvdevDevice(
            "buttons device",
            path,
            self._on_event,
            grab=grab,
            reopen_every=reopen_every,
            on_idle=self._check_stuck,
            quiet=True,
        )
        self.device.on_state(self._device_state)

    def start(self, on_key: KeyListener) -> None:
        self._listener = on_key
        self.device.start()

    def stop(self) -> None:
        self.device.stop()

    def _device_state(self, state: DeviceState, detail: str) -> None:
        if state != DeviceState.OK:
            self._decoder = KeypadDecoder(self.keys, self._decoder.stuck_s)
        self._set_state(state, detail)

    def _check_stuck(self) -> None:
        if self.device.state != DeviceState.OK:
            return
        stuck = self._decoder.check_stuck(time.time())
        if stuck:
            self._set_state(DeviceState.ERROR, f"{self.path}: key {', '.join(sorted(stuck))} stuck")
        elif self.state == DeviceState.ERROR:
            self._set_state(DeviceState.OK, self.path)

    def _on_event(self, ev: InputEvent) -> None:
        name = self._decoder.feed(ev)
        if name is None:
            return
        now = time.monotonic()
        if not self._debouncer.fresh(name, now):
            return
        if self._listener is not None:
            self._listener(KeyPress(name, now))
