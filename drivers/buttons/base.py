"""The keypad interface: a source of named key presses, with debounce and stuck-key handling."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.base import Watchable


@dataclass(frozen=True)
class KeyPress:
    key: str
    """The key's name as written in `[buttons].keys` ("1", "P", "KEY_KP4", ...)."""
    t: float = field(default_factory=time.monotonic)
    """Monotonic time of the press."""


KeyListener = Callable[[KeyPress], None]


class KeySource(Watchable):
    """Calls the listener once per accepted press, from the driver's own thread."""

    def start(self, on_key: KeyListener) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class Debouncer:
    """Drops a press of a key seen less than `debounce_ms` before.

    The window restarts at every press seen, accepted or not, so contact bounce and a key
    that is stuck and auto-repeats never produce a second press until it is released.
    """

    def __init__(self, debounce_ms: int) -> None:
        self.window = debounce_ms / 1000.0
        self._last_seen: dict[str, float] = {}

    def accept(self, key: str, t: float) -> bool:
        last = self._last_seen.get(key)
        self._last_seen[key] = t
        return last is None or t - last >= self.window
