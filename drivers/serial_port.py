"""A serial port that is opened by path, read on its own thread, and reopened after an unplug.

Use `/dev/serial/by-id/...` paths: a USB adapter keeps that name when it re-enumerates.
"""

from __future__ import annotations

import logging
import termios
import threading
import time
from collections.abc import Callable

import serial

from drivers.base import DeviceState, Watchable, resolve_device

log = logging.getLogger("careterm.drivers.serial")

REOPEN_EVERY_S = 1.0


class SerialPort(Watchable):
    """Delivers received bytes to `on_bytes`; survives unplug, replug and garbage."""

    def __init__(
        self,
        name: str,
        path: str,
        baudrate: int,
        on_bytes: Callable[[bytes], None],
        *,
        read_timeout: float = 0.1,
        reopen_every: float = REOPEN_EVERY_S,
        quiet: bool = False,
    ) -> None:
        super().__init__(name, quiet=quiet)
        self.path = path
        self.baudrate = baudrate
        self._on_bytes = on_bytes
        self._read_timeout = read_timeout
        self.reopen_every = reopen_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: serial.Serial | None = None
        self._write_lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._close()

    def write(self, data: bytes) -> bool:
        """Write to the port if it is open; False when it is not (the caller decides)."""
        with self._write_lock:
            port = self._port
            if port is None:
                return False
            try:
                port.write(data)
                port.flush()
                return True
            except (serial.SerialException, OSError, termios.error) as e:
                log.warning("%s: write failed on %s: %s", self.name, self.path, e)
                return False

    def _open(self) -> serial.Serial | None:
        # A by-id symlink is resolved at every (re)open: after a replug it may point elsewhere.
        real = resolve_device(self.path)
        try:
            port = serial.Serial(real, self.baudrate, timeout=self._read_timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            self._set_state(DeviceState.ABSENT, f"{self.path}: {e}")
            return None
        self._set_state(
            DeviceState.OK, self.path if real == self.path else f"{self.path} -> {real}"
        )
        return port

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._port is None:
                self._port = self._open()
                if self._port is None:
                    self._stop.wait(self.reopen_every)
                    continue
            try:
                data = self._port.read(max(1, self._port.in_waiting or 1))
            except (serial.SerialException, OSError, TypeError, termios.error) as e:
                # TypeError: pyserial on a vanished pty can fail inside select().
                log.warning(
                    "%s: %s went away (%s); waiting for it to come back", self.name, self.path, e
                )
                self._set_state(DeviceState.ABSENT, f"{self.path}: unplugged")
                self._close()
                self._stop.wait(self.reopen_every)
                continue
            if data:
                try:
                    self._on_bytes(data)
                except Exception:
                    log.exception("%s: handling received bytes failed", self.name)
            elif not self._port.is_open:
                self._close()
            time.sleep(0)
