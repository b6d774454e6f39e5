"""An input device (`/dev/input/by-id/...`) read as raw `struct input_event` bytes, grabbed, reopened after an unplug.

Kept thin on purpose: the bytes go to `drivers.input_events`, which is pure and tested. The
grab (EVIOCGRAB) keeps a wedge reader's keystrokes away from the kiosk window; a path that
is not an input device (a pipe in tests) cannot be grabbed, which is logged, not fatal.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import threading
from collections.abc import Callable

from drivers.base import DeviceState, Watchable, resolve_device
from drivers.input_events import EventStream, InputEvent

log = logging.getLogger("careterm.drivers.evdev")

EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int)
REOPEN_EVERY_S = 1.0


class EvdevDevice(Watchable):
    def __init__(
        self,
        name: str,
        path: str,
        on_event: Callable[[InputEvent], None],
        *,
        grab: bool = True,
        reopen_every: float = REOPEN_EVERY_S,
        on_idle: Callable[[], None] | None = None,
        idle_every: float = 0.5,
        quiet: bool = False,
    ) -> None:
        super().__init__(name, quiet=quiet)
        self.path = path
        self.grab = grab
        self.reopen_every = reopen_every
        self.grabbed = False
        self._on_event = on_event
        self._on_idle = on_idle
        self._idle_every = idle_every
        self._fd: int | None = None
        self._stream = EventStream()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"evdev-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._close()

    def _open(self) -> bool:
        real = resolve_device(self.path)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            hint = " (is the user in group 'input'?)" if e.errno == errno.EACCES else ""
            self._set_state(DeviceState.ABSENT, f"{self.path}: {e.strerror}{hint}")
            return False
        self.grabbed = False
        if self.grab:
            try:
                fcntl.ioctl(fd, EVIOCGRAB, 1)
                self.grabbed = True
            except OSError as e:
                log.warning(
                    "%s: cannot grab %s (%s): keystrokes may also reach the screen",
                    self.name,
                    real,
                    e.strerror,
                )
        self._fd = fd
        self._stream = EventStream()
        self._set_state(
            DeviceState.OK, self.path if real == self.path else f"{self.path} -> {real}"
        )
        return True

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            if self.grabbed:
                with contextlib.suppress(OSError):
                    fcntl.ioctl(fd, EVIOCGRAB, 0)
            with contextlib.suppress(OSError):
                os.close(fd)

    def _gone(self, why: str) -> None:
        log.warning("%s: %s went away (%s); waiting for it to come back", self.name, self.path, why)
        self._set_state(DeviceState.ABSENT, f"{self.path}: unplugged")
        self._close()
        self._stop.wait(self.reopen_every)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._fd is None and not self._open():
                self._stop.wait(self.reopen_every)
                continue
            try:
                r, _, _ = select.select([self._fd], [], [], self._idle_every)
                data = os.read(self._fd, 4096) if r else None  # type: ignore[arg-type]
            except BlockingIOError:
                continue
            except OSError as e:  # ENODEV after an unplug
                self._gone(e.strerror or str(e))
                continue
            if data is None:
                self._idle()
                continue
            if not data:  # end of file: a pipe whose writer left
                self._gone("end of input")
                continue
            for ev in self._stream.feed(data):
                try:
                    self._on_event(ev)
                except Exception:
                    log.exception("%s: handling an input event failed", self.name)
            self._idle()

    def _idle(self) -> None:
        if self._on_idle is not None:
            try:
                self._on_idle()
            except Exception:
                log.exception("%s: idle check failed", self.name)
