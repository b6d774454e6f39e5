"""A serial port opened by path, read on its own thread, and reopened after an unplug.

Use `/dev/serial/by-id/...` paths: a USB adapter keeps that name when it re-enumerates.
"""

from __future__ import annotations

import logging
import termios
import threading
from collections.abc import Callable

import serial

from drivers.reopening import REOPEN_EVERY_S, DeviceGone, ReopeningPort

log = logging.getLogger("careterm.drivers.serial")

# TypeError: pyserial on a vanished pty can fail inside select(); termios.error: tcflush or
# reconfiguring a port whose device is gone.
SERIAL_GONE = (serial.SerialException, OSError, TypeError, termios.error)


def open_serial(real: str, baudrate: int, **kw: float) -> serial.Serial:
    """pyserial's port, or `DeviceGone` saying why not."""
    try:
        return serial.Serial(real, baudrate, **kw)
    except (serial.SerialException, OSError, ValueError) as e:
        raise DeviceGone(str(e)) from None


class SerialPort(ReopeningPort):
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
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            name, path, reopen_every=reopen_every, quiet=quiet, thread_name=f"serial-{name}"
        )
        self.baudrate = baudrate
        self._on_bytes = on_bytes
        self._on_idle = on_idle  # called, on the port's thread, after a read that got nothing
        self._read_timeout = read_timeout
        self._port: serial.Serial | None = None
        self._write_lock = threading.Lock()

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
            except SERIAL_GONE as e:
                log.warning("%s: write failed on %s: %s", self.name, self.path, e)
                return False

    def _open(self, real: str) -> None:
        self._port = open_serial(real, self.baudrate, timeout=self._read_timeout)

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _serve(self) -> None:
        port = self._port
        if port is None or not port.is_open:
            raise DeviceGone("closed")
        try:
            data = port.read(max(1, port.in_waiting or 1))
        except SERIAL_GONE as e:
            raise DeviceGone(str(e)) from None
        if data:
            try:
                self._on_bytes(data)
            except Exception:
                log.exception("%s: handling received bytes failed", self.name)
        elif self._on_idle is not None:
            try:
                self._on_idle()
            except Exception:
                log.exception("%s: idle check failed", self.name)
