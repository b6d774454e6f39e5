"""What every driver shares: a health state a UI or telemetry can watch, and listener plumbing."""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("careterm.drivers")


class DeviceState(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"  # working, but needs attention soon (printer paper near its end)
    ABSENT = "absent"  # unplugged or not found; the driver keeps looking
    ERROR = "error"  # present but failing (paper out, bad frames, ...)
    UNKNOWN = "unknown"  # cannot tell: a write-only printer, or one that never answers status
    DISABLED = "disabled"  # driver = "none"


StateListener = Callable[[DeviceState, str], None]


class Watchable:
    """A device whose state changes are reported once per change, with a reason."""

    def __init__(self, name: str, *, quiet: bool = False) -> None:
        self.name = name
        self._quiet = quiet  # an inner transport whose owner logs the change itself
        self._state = DeviceState.UNKNOWN
        self._detail = ""
        self._listeners: list[StateListener] = []
        self._state_lock = threading.Lock()

    @property
    def state(self) -> DeviceState:
        return self._state

    @property
    def detail(self) -> str:
        return self._detail

    def on_state(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def _set_state(self, state: DeviceState, detail: str = "") -> None:
        with self._state_lock:
            if state == self._state and detail == self._detail:
                return
            changed = state != self._state
            self._state, self._detail = state, detail
        if changed:
            if not self._quiet:
                log.info("%s: %s%s", self.name, state.value, f" ({detail})" if detail else "")
            for fn in list(self._listeners):
                try:
                    fn(state, detail)
                except Exception:
                    log.exception("%s: state listener failed", self.name)


def resolve_device(path: str) -> str:
    """The device node behind a `/dev/.../by-id/...` symlink, re-read at every (re)open.

    Falls back to the path itself when the link target is not a file name (a /proc fd link).
    """
    real = os.path.realpath(path)
    return real if os.path.exists(real) else path
