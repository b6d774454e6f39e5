"""Ways to reach an ESC/POS printer: python-escpos's printer classes, each bounded by a deadline.

`Deadlined` is the small extension: `send(data, deadline)` and status reads never wait past
their deadline, and a printer that vanished raises `TransportError` (never hangs, never a
library-specific exception). The subclasses are the library's own transports with the
pieces they lack:

- `SerialPrinter` (`escpos.printer.Serial`): write timeout from the deadline, a by-id path
  re-resolved at every open, no `flush()` on close (tcdrain waits forever on a printer
  holding flow control), status read one byte at a time (the library reads 16 bytes, so each
  status question would wait out its whole timeout).
- `NetworkPrinter` (`escpos.printer.Network`): socket timeouts from the deadline, a 3 s
  connect, or the ticket's deadline if sooner (the library's default is 60 s, IPv4 only).
- `FilePrinter` (`escpos.printer.File`): appends (the library opens with "wb", which would
  erase the tickets already there), or one `.bin` per ticket into a folder; cannot read.
- `DevicePrinter` (`escpos.printer.File`): a character device such as the kernel's usblp
  node, non-blocking with `select` (a blocking write to a printer that takes nothing would
  hang forever), readable for `DLE EOT`.
- `UsbPrinter`: vendor:product found in sysfs at every (re)open as a `DevicePrinter`, or,
  with no usblp node and pyusb installed, `PyUsbPrinter` (`escpos.printer.Usb`, write-only).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

from escpos.constants import RT_STATUS
from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import File, Network, Serial, Usb

from drivers.base import resolve_device
from drivers.serial_port import SERIAL_GONE

SYSFS_USBMISC = Path("/sys/class/usbmisc")
DEV_USB = "/dev/usb"
DEFAULT_WRITE_S = 5.0
MIN_WRITE_S = 0.05
DRAIN_LIMIT = 4096  # bytes dropped before a status question, at most


class TransportError(OSError):
    """The printer cannot be reached: unplugged, refused, timed out. The message says which."""


class Deadlined(Escpos):
    """A python-escpos printer whose writes and status reads are bounded by a deadline."""

    name = "printer"
    can_read = False
    _deadline: float | None = None

    def _left(self, floor: float = MIN_WRITE_S) -> float:
        deadline = self._deadline or time.monotonic() + DEFAULT_WRITE_S
        return max(floor, deadline - time.monotonic())

    def connect(self) -> None:
        """Open now if not open (raises `TransportError`)."""
        if not self._device:
            self._device = False
            self.open()

    def connect_within(self, deadline: float) -> None:
        """`connect`, giving up at `deadline` (monotonic) where the transport can wait (TCP)."""
        self._deadline = deadline
        try:
            self.connect()
        finally:
            self._deadline = None

    def send(self, data: bytes, deadline: float) -> None:
        """Write `data` whole before `deadline` (monotonic) or raise `TransportError`."""
        self._deadline = deadline
        try:
            self.connect()
            self._raw(data)
        finally:
            self._deadline = None

    def ask_status(self, n: int, timeout: float) -> int | None:
        """`DLE EOT n` through the library's `query_status`; None when nothing came back."""
        if not self.can_read:
            return None
        self.connect()  # its own connect timeout, or the deadline of `connect_within` before
        self._deadline = time.monotonic() + timeout
        try:
            got = self.query_status(RT_STATUS + bytes([n]))
        finally:
            self._deadline = None
        return got[-1] if got else None

    def drain(self, limit: int = DRAIN_LIMIT) -> None:
        """Drop bytes already waiting (a late answer to an earlier question), at most `limit`:
        a device that never stops sending (a wrong port, a chatty service on 9100) must not
        hold the caller here for ever; its next answer then just makes no sense."""
        if self.can_read:
            dropped = 0
            while dropped < limit and (got := self._read_within(64, 0)):
                dropped += len(got)

    def _read(self) -> bytes:
        return self._read_within(1, self._left(0.0))

    def _read_within(self, n: int, timeout: float) -> bytes:
        return b""


def find_usblp(
    vendor: int, product: int, sysfs: Path = SYSFS_USBMISC, dev_dir: str = DEV_USB
) -> str | None:
    """The /dev/usb/lpN node of the USB printer vendor:product, from sysfs (re-read each call)."""
    if not sysfs.is_dir():
        return None
    for node in sorted(sysfs.glob("lp*")):
        try:
            dev = (node / "device").resolve()
        except OSError:
            continue
        for up in (dev, dev.parent):  # the interface, then the device holding idVendor
            try:
                v = int((up / "idVendor").read_text().strip(), 16)
                p = int((up / "idProduct").read_text().strip(), 16)
            except (OSError, ValueError):
                continue
            if (v, p) == (vendor, product):
                return f"{dev_dir}/{node.name}"
    return None


class SerialPrinter(Deadlined, Serial):
    can_read = True

    def __init__(self, path: str, baudrate: int) -> None:
        # dsrdtr=False: the port as pyserial opens it by default (the library turns it on)
        Serial.__init__(self, devfile=path, baudrate=baudrate, timeout=0.2, dsrdtr=False)
        self.path = path
        self.name = path

    def open(self, raise_not_found: bool = True) -> None:
        self.devfile = resolve_device(self.path)  # a by-id link may point elsewhere now
        try:
            Serial.open(self, raise_not_found=True)
        except DeviceNotFoundError as e:
            self._device = False
            raise TransportError(errno.ENODEV, f"{self.path}: {e.__context__ or e}") from None

    def _raw(self, msg: bytes) -> None:
        self.connect()
        port = self._device
        try:
            port.write_timeout = self._left()  # type: ignore[union-attr]
            port.write(msg)  # type: ignore[union-attr]
        except SERIAL_GONE as e:
            self.close()
            raise TransportError(errno.EIO, f"{self.path}: {e}") from None

    def _read_within(self, n: int, timeout: float) -> bytes:
        self.connect()
        port = self._device
        try:
            port.timeout = timeout  # type: ignore[union-attr]  # fails once the port is gone
            return bytes(port.read(n))  # type: ignore[union-attr]
        except SERIAL_GONE as e:
            self.close()
            raise TransportError(errno.EIO, f"{self.path}: {e}") from None

    def close(self) -> None:
        port, self._device = self._device, False
        if port:
            with contextlib.suppress(Exception):
                port.close()  # type: ignore[union-attr]


class NetworkPrinter(Deadlined, Network):
    can_read = True
    CONNECT_TIMEOUT_S = 3.0

    def __init__(self, host: str, port: int = 9100) -> None:
        Network.__init__(self, host=host, port=port, timeout=self.CONNECT_TIMEOUT_S)
        self.name = f"{host}:{port}"

    @classmethod
    def parse(cls, device: str) -> NetworkPrinter:
        host, _, port = device.rpartition(":")
        if not host:
            return cls(device)
        return cls(host.strip("[]"), int(port))

    def open(self, raise_not_found: bool = True) -> None:
        try:
            timeout = min(self.timeout, self._left())  # a ticket's deadline, if sooner
            self._device = socket.create_connection((self.host, self.port), timeout)
        except OSError as e:
            self._device = False
            raise TransportError(
                e.errno or errno.EHOSTUNREACH, f"{self.name}: cannot connect ({e.strerror or e})"
            ) from None

    def _raw(self, msg: bytes) -> None:
        self.connect()
        sock: socket.socket = self._device  # type: ignore[assignment]
        try:
            sock.settimeout(self._left())
            sock.sendall(msg)
        except OSError as e:
            self.close()
            raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror or e}") from None

    def _read_within(self, n: int, timeout: float) -> bytes:
        self.connect()
        sock: socket.socket = self._device  # type: ignore[assignment]
        try:
            sock.settimeout(timeout)
            data = sock.recv(n)
        except (TimeoutError, BlockingIOError):
            return b""
        except OSError as e:
            self.close()
            raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror or e}") from None
        if not data:
            self.close()
            raise TransportError(errno.ECONNRESET, f"{self.name}: connection closed")
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            Network.close(self)
        self._device = False


class FilePrinter(Deadlined, File):
    """A file gets every ticket appended; a folder gets one numbered `.bin` per ticket."""

    def __init__(self, path: str) -> None:
        File.__init__(self, devfile=path, auto_flush=True)
        self.path = Path(path)
        self.name = str(path)
        self.written: list[Path] = []

    def open(self, raise_not_found: bool = True) -> None:
        try:
            self._device = open(self.devfile, "ab")  # noqa: SIM115 - closed by close()
        except OSError as e:
            self._device = False
            raise TransportError(e.errno or errno.EIO, f"{self.path}: {e.strerror}") from None

    def send(self, data: bytes, deadline: float) -> None:
        if self.path.is_dir():
            target = (
                self.path
                / f"ticket-{time.strftime('%Y%m%d-%H%M%S')}-{len(self.written) + 1:04d}.bin"
            )
            try:
                target.write_bytes(data)
            except OSError as e:
                raise TransportError(e.errno or errno.EIO, f"{target}: {e.strerror}") from None
        else:
            target = self.path
            self.connect()
            try:
                File._raw(self, data)
            except OSError as e:
                self.close()
                raise TransportError(e.errno or errno.EIO, f"{self.path}: {e.strerror}") from None
        self.written.append(target)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            File.close(self)
        self._device = False


class DevicePrinter(Deadlined, File):
    """A character device (usblp `/dev/usb/lpN`, a parallel or serial device file)."""

    can_read = True

    def __init__(self, path: str | Callable[[], str | None], name: str = "") -> None:
        File.__init__(self, devfile=path if isinstance(path, str) else "")
        self._path = path
        self.name = name or (path if isinstance(path, str) else "usb")
        self._fd: int | None = None

    def _resolve(self) -> str:
        p = self._path() if callable(self._path) else resolve_device(self._path)
        if not p:
            raise TransportError(errno.ENODEV, f"{self.name}: not connected")
        return p

    def open(self, raise_not_found: bool = True) -> None:
        path = self._resolve()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as e:
            self._device = False
            raise TransportError(
                e.errno or errno.EIO, f"{self.name}: {e.strerror} ({path})"
            ) from None
        self._device = True

    def _raw(self, msg: bytes) -> None:
        self.connect()
        fd = self._fd
        assert fd is not None
        view = memoryview(msg)
        while view:
            left = self._left(0.0)
            if left <= 0:
                raise TransportError(errno.ETIMEDOUT, f"{self.name}: write timed out")
            try:
                _, w, _ = select.select([], [fd], [], left)
                if not w:
                    continue
                n = os.write(fd, view)
            except BlockingIOError:
                continue
            except OSError as e:
                self.close()
                raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror}") from None
            view = view[n:]

    def _read_within(self, n: int, timeout: float) -> bytes:
        self.connect()
        fd = self._fd
        assert fd is not None
        try:
            r, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, n) if r else b""
        except BlockingIOError:
            return b""
        except OSError as e:
            self.close()
            raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror}") from None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        self._device = False
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class PyUsbPrinter(Deadlined, Usb):
    """python-escpos's `Usb` (pyusb, libusb), when the kernel's usblp driver is not bound.

    Write-only here: its status endpoint differs between models. Its own timeout bounds a
    write (pyusb cannot be interrupted by our deadline)."""

    def __init__(self, vendor: int, product: int, timeout_ms: int = 3000) -> None:
        Usb.__init__(self, vendor, product, timeout=timeout_ms)
        self.name = f"usb {vendor:04x}:{product:04x}"

    def open(self, raise_not_found: bool = True) -> None:
        try:
            Usb.open(self, raise_not_found=True)
        except Exception as e:  # pyusb raises several unrelated types
            self._device = False
            raise TransportError(errno.ENODEV, f"{self.name}: {e}") from None

    def _raw(self, msg: bytes) -> None:
        self.connect()
        try:
            Usb._raw(self, msg)
        except Exception as e:
            self.close()
            raise TransportError(errno.EIO, f"{self.name}: {e}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            Usb.close(self)
        self._device = False


class UsbPrinter(Deadlined):
    """USB printer by vendor:product: the usblp node when the kernel has one, else pyusb."""

    can_read = True

    def __init__(
        self, vendor: int, product: int, sysfs: Path = SYSFS_USBMISC, dev_dir: str = DEV_USB
    ) -> None:
        Escpos.__init__(self)
        self.vendor, self.product, self.sysfs, self.dev_dir = vendor, product, sysfs, dev_dir
        self.name = f"usb {vendor:04x}:{product:04x}"
        self._inner: Deadlined | None = None

    def open(self, raise_not_found: bool = True) -> None:
        # looked up at every (re)open: a replugged printer may come back as another lpN
        node = find_usblp(self.vendor, self.product, self.sysfs, self.dev_dir)
        inner: Deadlined
        if node is not None:
            inner = DevicePrinter(node, f"{self.name} ({node})")
        elif Usb.is_usable():
            inner = PyUsbPrinter(self.vendor, self.product)
        else:
            raise TransportError(
                errno.ENODEV,
                f"{self.name}: not found (no /dev/usb/lp* with this "
                "vendor:product; check the cable and [printer].usb_vendor/"
                "usb_product, `careterm hw list` shows what is there)",
            )
        inner.connect()
        self._inner = inner
        self._device = inner
        self.can_read = inner.can_read

    def _raw(self, msg: bytes) -> None:
        self.connect()
        assert self._inner is not None
        try:
            self._inner.send(msg, self._deadline or time.monotonic() + DEFAULT_WRITE_S)
        except TransportError:
            self.close()
            raise

    def _read_within(self, n: int, timeout: float) -> bytes:
        self.connect()
        assert self._inner is not None
        try:
            return self._inner._read_within(n, timeout)
        except TransportError:
            self.close()
            raise

    def close(self) -> None:
        inner, self._inner = self._inner, None
        self._device = False
        if inner is not None:
            inner.close()
