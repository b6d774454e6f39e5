"""Service lifecycle: SIGTERM/SIGINT stop cleanly, and sd_notify READY / WATCHDOG under systemd."""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("careterm.lifecycle")


def forbid_core_dumps() -> None:
    """A device process writes no core file: its memory holds the patient on screen and the
    day's roster rows, and a crash dump (systemd-coredump, `ulimit -c unlimited` in a shell a
    technician started it from) would keep them on disk. The units set `LimitCORE=0` too."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as e:
        log.warning("core dumps stay allowed: %s", e)


def sd_notify(state: str) -> bool:
    """Send one datagram to $NOTIFY_SOCKET; False when not under systemd (or it failed)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
        return True
    except OSError as e:
        log.warning("sd_notify failed: %s", e)
        return False


class Lifecycle:
    """Holds the stop flag; pings the systemd watchdog while `healthy()` says so."""

    def __init__(self, healthy: Callable[[], bool] | None = None) -> None:
        self.stop_event = threading.Event()
        self._healthy = healthy or (lambda: True)
        self._watchdog: threading.Thread | None = None

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, frame: object) -> None:
            log.info("received %s; stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def ready(self, status: str = "") -> None:
        sd_notify("READY=1" + (f"\nSTATUS={status}" if status else ""))
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        pid = os.environ.get("WATCHDOG_PID")
        if usec > 0 and (not pid or pid == str(os.getpid())):
            interval = usec / 1e6 / 2
            self._watchdog = threading.Thread(
                target=self._watch, args=(interval,), name="sd-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch(self, interval: float) -> None:
        while not self.stop_event.wait(interval):
            if self._healthy():
                sd_notify("WATCHDOG=1")
            else:
                log.error("unhealthy: not pinging the systemd watchdog")

    def stopping(self) -> None:
        sd_notify("STOPPING=1")

    def wait(self, poll: float = 0.5) -> None:
        while not self.stop_event.wait(poll):
            pass
