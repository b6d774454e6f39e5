"""One reopening port: a device opened by path and served on its own thread; when it goes away
(unplugged, powered off, permissions) it is closed and opened again, with back-off, until it
comes back. `SerialPort`, the ID card reader's port and `EvdevDevice` are built on it.

A `/dev/serial/by-id/...` or `/dev/input/by-id/...` symlink is resolved at every (re)open:
after a replug it may point at another node (`ttyUSB0` becomes `ttyUSB1`).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from drivers.base import DeviceState, Watchable, resolve_device
from terminal.backoff import Backoff

log = logging.getLogger("careterm.drivers")

REOPEN_EVERY_S = 1.0
REOPEN_CAP_FACTOR = 5
"""Retries back off from `reopen_every` to this many times it (1 s to 5 s by default)."""


class DeviceGone(Exception):
    """The device cannot be opened or went away; the message says why (without the path)."""


class DeviceUnusable(Exception):
    """The device is there but must not be used as it is (an input device another program
    holds); the state turns `error` with the reason, and it is tried again later."""


class ReopeningPort(Watchable, ABC):
    """Subclasses open (`_open`), serve one step at a time (`_serve`) and close (`_close`).

    `_open` and `_serve` raise `DeviceGone` for an absent or vanished device; the state then
    turns `absent` with the path and the reason, and the port is reopened later. Any other
    exception from `_serve` is logged and the port is reopened too, so a driver bug or an
    odd device never kills the thread.
    """

    def __init__(
        self,
        name: str,
        path: str,
        *,
        reopen_every: float = REOPEN_EVERY_S,
        quiet: bool = False,
        thread_name: str = "",
    ) -> None:
        super().__init__(name, quiet=quiet)
        self.path = path
        self._backoff = Backoff(first=reopen_every, cap=reopen_every * REOPEN_CAP_FACTOR)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_name = thread_name or f"port-{name}"
        self.is_open = False

    @property
    def reopen_every(self) -> float:
        return self._backoff.first

    @reopen_every.setter
    def reopen_every(self, value: float) -> None:
        self._backoff.first, self._backoff.cap = value, value * REOPEN_CAP_FACTOR

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self, join_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_s)
        self._shut()

    def is_alive(self) -> bool:
        """Whether the port's thread runs (it outlives unplugs, garbage and driver errors)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @abstractmethod
    def _open(self, real: str) -> None:
        """Open the device node `real` (the resolved path); raise `DeviceGone` if it is not there."""

    @abstractmethod
    def _serve(self) -> None:
        """One step of work on the open device (a read, a poll); raise `DeviceGone` when it left."""

    @abstractmethod
    def _close(self) -> None:
        """Close the device; must not raise."""

    def _opened_detail(self, real: str) -> str:
        return self.path if real == self.path else f"{self.path} -> {real}"

    def _shut(self) -> None:
        self.is_open = False
        self._close()

    def _retry_later(self) -> None:
        self._stop.wait(self._backoff.next())

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.is_open:
                real = resolve_device(self.path)
                try:
                    self._open(real)
                except DeviceGone as e:
                    self._set_state(DeviceState.ABSENT, f"{self.path}: {e}")
                    self._retry_later()
                    continue
                except DeviceUnusable as e:
                    self._set_state(DeviceState.ERROR, f"{self.path}: {e}")
                    self._retry_later()
                    continue
                self.is_open = True
                self._backoff.reset()
                self._set_state(DeviceState.OK, self._opened_detail(real))
            try:
                self._serve()
            except DeviceGone as e:
                log.warning(
                    "%s: %s went away (%s); waiting for it to come back", self.name, self.path, e
                )
                self._set_state(DeviceState.ABSENT, f"{self.path}: unplugged")
                self._shut()
                self._retry_later()
            except Exception:
                log.exception("%s: serving %s failed; reopening it", self.name, self.path)
                self._set_state(DeviceState.ERROR, f"{self.path}: driver error (see the log)")
                self._shut()
                self._retry_later()
