"""The keypad interface: a source of named key presses (debounced, stuck keys reported)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.base import Watchable
from drivers.repeat import RepeatFilter


@dataclass(frozen=True)
class KeyPress:
    key: str
    """The key's name as written in `[buttons].keys` ("1", "P", "KEY_KP4", ...)."""
    t: float = field(default_factory=time.monotonic)
    """Monotonic time of the press."""


KeyListener = Callable[[KeyPress], None]


class KeySource(Watchable, ABC):
    """Calls the listener once per accepted press, from the driver's own thread."""

    @abstractmethod
    def start(self, on_key: KeyListener) -> None:
        """Open the keypad (in the background) and deliver presses to `on_key`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering presses and release the device."""


def debouncer(debounce_ms: int) -> RepeatFilter:
    """`[rating].debounce_ms`: a second press of a key within the window is dropped and the
    window restarts, so contact bounce and an auto-repeating key give one press."""
    return RepeatFilter(debounce_ms / 1000.0, per_key=True)
