"""An input device (`/dev/input/by-id/...`) read as raw `struct input_event` bytes, grabbed, reopened after an unplug.

Kept thin on purpose: the bytes go to `drivers.input_events`, which is pure and tested. The
grab (EVIOCGRAB) keeps a wedge reader's keystrokes away from the kiosk window: a device node
that cannot be grabbed (another program holds it, or it is not an input device) is an error
and is not read, since an ID number it types would also land in whatever field the screen has;
a path that is no device node at all (a pipe in tests) cannot be grabbed, which is logged.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import stat
from collections.abc import Callable

from drivers.input_events import EventStream, InputEvent
from drivers.reopening import REOPEN_EVERY_S, DeviceGone, DeviceUnusable, ReopeningPort

log = logging.getLogger("careterm.drivers.evdev")

EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int)


class EvdevDevice(ReopeningPort):
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
        super().__init__(
            name, path, reopen_every=reopen_every, quiet=quiet, thread_name=f"evdev-{name}"
        )
        self.grab = grab
        self.grabbed = False
        self._on_event = on_event
        self._on_idle = on_idle
        self._idle_every = idle_every
        self._fd: int | None = None
        self._stream = EventStream()

    def _open(self, real: str) -> None:
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            hint = " (is the user in group 'input'?)" if e.errno == errno.EACCES else ""
            raise DeviceGone(f"{e.strerror}{hint}") from None
        self.grabbed = False
        if self.grab:
            try:
                fcntl.ioctl(fd, EVIOCGRAB, 1)
                self.grabbed = True
            except OSError as e:
                if _is_device_node(fd):
                    os.close(fd)
                    raise DeviceUnusable(
                        f"cannot grab it ({e.strerror}): another program holds it, or it is "
                        "not an input device; not read, as its keys would also reach the screen"
                    ) from None
                log.warning(
                    "%s: cannot grab %s (%s, not a device node): keystrokes may also reach "
                    "the screen",
                    self.name,
                    real,
                    e.strerror,
                )
        self._fd = fd
        self._stream = EventStream()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            if self.grabbed:
                with contextlib.suppress(OSError):
                    fcntl.ioctl(fd, EVIOCGRAB, 0)
            with contextlib.suppress(OSError):
                os.close(fd)

    def _serve(self) -> None:
        fd = self._fd
        if fd is None:
            raise DeviceGone("closed")
        try:
            r, _, _ = select.select([fd], [], [], self._idle_every)
            data = os.read(fd, 4096) if r else None
        except BlockingIOError:
            return
        except OSError as e:  # ENODEV after an unplug
            raise DeviceGone(e.strerror or str(e)) from None
        if data is None:
            self._idle()
            return
        if not data:  # end of file: a pipe whose writer left
            raise DeviceGone("end of input")
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


def _is_device_node(fd: int) -> bool:
    try:
        return stat.S_ISCHR(os.fstat(fd).st_mode)
    except OSError:
        return False
