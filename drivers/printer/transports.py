"""Ways to reach an ESC/POS printer; each only moves bytes, always within a deadline.

- `DeviceTransport`: a character device (the kernel's usblp `/dev/usb/lpN`, found by
  vendor:product in sysfs for USB printers), non-blocking with select, readable for DLE EOT.
- `SerialTransport`: pyserial with write and read timeouts.
- `NetworkTransport`: raw TCP (`host:9100`), connect/send/recv timeouts.
- `FileTransport`: appends to a file, or writes one `.bin` per ticket into a folder.
- `PyUsbTransport`: python-escpos's `Usb` printer when pyusb is installed and no usblp node
  exists (the kernel driver is blacklisted); write-only here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import termios
import time
from collections.abc import Callable
from pathlib import Path

from drivers.base import resolve_device

SYSFS_USBMISC = Path("/sys/class/usbmisc")
DEV_USB = "/dev/usb"


class TransportError(OSError):
    """The printer cannot be reached: unplugged, refused, timed out. The message says which."""


class Transport:
    name = "transport"
    can_read = False

    def open(self) -> None:
        pass

    def write(self, data: bytes, deadline: float) -> None:
        raise NotImplementedError

    def read(self, n: int, timeout: float) -> bytes:
        return b""

    def close(self) -> None:
        pass


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


class DeviceTransport(Transport):
    can_read = True

    def __init__(self, path: str | Callable[[], str | None], name: str = "") -> None:
        self._path = path
        self.name = name or (path if isinstance(path, str) else "usb")
        self._fd: int | None = None

    def _resolve(self) -> str:
        p = self._path() if callable(self._path) else resolve_device(self._path)
        if not p:
            raise TransportError(errno.ENODEV, f"{self.name}: not connected")
        return p

    def open(self) -> None:
        if self._fd is not None:
            return
        path = self._resolve()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as e:
            raise TransportError(
                e.errno or errno.EIO, f"{self.name}: {e.strerror} ({path})"
            ) from None

    def write(self, data: bytes, deadline: float) -> None:
        self.open()
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportError(errno.ETIMEDOUT, f"{self.name}: write timed out")
            try:
                _, w, _ = select.select([], [self._fd], [], left)
                if not w:
                    continue
                n = os.write(self._fd, view)  # type: ignore[arg-type]
            except BlockingIOError:
                continue
            except OSError as e:
                self.close()
                raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror}") from None
            view = view[n:]

    def read(self, n: int, timeout: float) -> bytes:
        self.open()
        try:
            r, _, _ = select.select([self._fd], [], [], timeout)
            return os.read(self._fd, n) if r else b""  # type: ignore[arg-type]
        except BlockingIOError:
            return b""
        except OSError as e:
            self.close()
            raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror}") from None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class SerialTransport(Transport):
    can_read = True

    def __init__(self, path: str, baudrate: int) -> None:
        self.path = path
        self.baudrate = baudrate
        self.name = path
        self._port = None

    def open(self) -> None:
        if self._port is not None:
            return
        import serial

        real = resolve_device(self.path)
        try:
            self._port = serial.Serial(real, self.baudrate, timeout=0.2, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as e:
            raise TransportError(errno.ENODEV, f"{self.path}: {e}") from None

    def write(self, data: bytes, deadline: float) -> None:
        import serial

        self.open()
        assert self._port is not None
        # no flush(): tcdrain can wait forever on a printer holding flow control
        try:
            self._port.write_timeout = max(0.05, deadline - time.monotonic())
            self._port.write(data)
        except (serial.SerialException, OSError, termios.error) as e:
            self.close()
            raise TransportError(errno.EIO, f"{self.path}: {e}") from None

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        self.open()
        assert self._port is not None
        try:
            self._port.timeout = timeout  # reconfigures the port: fails once it is gone
            return bytes(self._port.read(n))
        except (serial.SerialException, OSError, TypeError, termios.error) as e:
            self.close()
            raise TransportError(errno.EIO, f"{self.path}: {e}") from None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()


class NetworkTransport(Transport):
    can_read = True
    CONNECT_TIMEOUT_S = 3.0

    def __init__(self, host: str, port: int = 9100) -> None:
        self.host, self.port = host, port
        self.name = f"{host}:{port}"
        self._sock: socket.socket | None = None

    @classmethod
    def parse(cls, device: str) -> NetworkTransport:
        host, _, port = device.rpartition(":")
        if not host:
            return cls(device)
        return cls(host.strip("[]"), int(port))

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), self.CONNECT_TIMEOUT_S)
        except OSError as e:
            raise TransportError(
                e.errno or errno.EHOSTUNREACH, f"{self.name}: cannot connect ({e.strerror or e})"
            ) from None

    def write(self, data: bytes, deadline: float) -> None:
        self.open()
        assert self._sock is not None
        try:
            self._sock.settimeout(max(0.05, deadline - time.monotonic()))
            self._sock.sendall(data)
        except OSError as e:
            self.close()
            raise TransportError(e.errno or errno.EIO, f"{self.name}: {e.strerror or e}") from None

    def read(self, n: int, timeout: float) -> bytes:
        self.open()
        assert self._sock is not None
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(n)
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
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class FileTransport(Transport):
    """A file gets every ticket appended; a folder gets one numbered `.bin` per ticket."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.written: list[Path] = []

    def write(self, data: bytes, deadline: float) -> None:
        try:
            if self.path.is_dir():
                target = (
                    self.path
                    / f"ticket-{time.strftime('%Y%m%d-%H%M%S')}-{len(self.written) + 1:04d}.bin"
                )
                target.write_bytes(data)
            else:
                target = self.path
                with target.open("ab") as f:
                    f.write(data)
        except OSError as e:
            raise TransportError(e.errno or errno.EIO, f"{self.path}: {e.strerror}") from None
        self.written.append(target)


class PyUsbTransport(Transport):
    """Through python-escpos's `Usb` (pyusb, libusb): used when no usblp node exists."""

    def __init__(self, vendor: int, product: int, timeout_ms: int = 3000) -> None:
        self.vendor, self.product = vendor, product
        self.name = f"usb {vendor:04x}:{product:04x}"
        self.timeout_ms = timeout_ms
        self._printer = None

    def open(self) -> None:
        if self._printer is not None:
            return
        try:
            from escpos.printer import Usb

            p = Usb(self.vendor, self.product, timeout=self.timeout_ms)
            p.open(raise_not_found=True)
        except Exception as e:  # pyusb raises several unrelated types
            raise TransportError(errno.ENODEV, f"{self.name}: {e}") from None
        self._printer = p

    def write(self, data: bytes, deadline: float) -> None:
        self.open()
        try:
            self._printer._raw(data)  # type: ignore[union-attr]
        except Exception as e:
            self.close()
            raise TransportError(errno.EIO, f"{self.name}: {e}") from None

    def close(self) -> None:
        p, self._printer = self._printer, None
        if p is not None:
            with contextlib.suppress(Exception):
                p.close()


class UsbTransport(Transport):
    """USB printer by vendor:product: the usblp node when the kernel has one, else pyusb."""

    can_read = True

    def __init__(
        self, vendor: int, product: int, sysfs: Path = SYSFS_USBMISC, dev_dir: str = DEV_USB
    ) -> None:
        self.vendor, self.product, self.sysfs, self.dev_dir = vendor, product, sysfs, dev_dir
        self.name = f"usb {vendor:04x}:{product:04x}"
        self._inner: Transport | None = None

    def open(self) -> None:
        if self._inner is not None:
            return
        # looked up at every (re)open: a replugged printer may come back as another lpN
        node = find_usblp(self.vendor, self.product, self.sysfs, self.dev_dir)
        if node is not None:
            inner: Transport = DeviceTransport(node, f"{self.name} ({node})")
        else:
            try:
                import usb  # noqa: F401
            except ImportError:
                raise TransportError(
                    errno.ENODEV,
                    f"{self.name}: not found (no /dev/usb/lp* with this "
                    "vendor:product; check the cable and [printer].usb_vendor/"
                    "usb_product, `careterm hw list` shows what is there)",
                ) from None
            inner = PyUsbTransport(self.vendor, self.product)
        inner.open()
        self._inner = inner
        self.can_read = inner.can_read

    def write(self, data: bytes, deadline: float) -> None:
        self.open()
        try:
            self._inner.write(data, deadline)  # type: ignore[union-attr]
        except TransportError:
            self.close()
            raise

    def read(self, n: int, timeout: float) -> bytes:
        self.open()
        try:
            return self._inner.read(n, timeout)  # type: ignore[union-attr]
        except TransportError:
            self.close()
            raise

    def close(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()
