"""One quick check per configured device, for `careterm doctor`: present, and answering where it can.

Never reads a card or prints: the ID card module is asked "find card", a printer is asked
its `DLE EOT` status, ports and input devices are opened and closed.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass

from terminal.config import DeviceConfig


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    """What was found, or what is wrong and how to fix it."""


def _serial_open(path: str, baudrate: int):  # noqa: ANN202
    import serial

    from drivers.base import resolve_device

    return serial.Serial(resolve_device(path), baudrate, timeout=0.05, write_timeout=1.0)


def _port_check(name: str, path: str, baudrate: int, key: str) -> Check:
    import serial

    if not path:
        return Check(name, False, f"no device configured ({key})")
    try:
        _serial_open(path, baudrate).close()
    except (serial.SerialException, OSError, ValueError) as e:
        return Check(name, False, f"{path}: {e} (plugged in? see `careterm hw list`; user in group dialout?)")
    return Check(name, True, f"{path} opens")


def _input_check(name: str, path: str) -> Check:
    from drivers.base import resolve_device

    try:
        os.close(os.open(resolve_device(path), os.O_RDONLY | os.O_NONBLOCK))
    except OSError as e:
        hint = "user in group input?" if e.errno == errno.EACCES else "plugged in? see `careterm hw list`"
        return Check(name, False, f"{path}: {e.strerror} ({hint})")
    return Check(name, True, f"{path} opens")


def _idcard_check(path: str, baudrate: int, timeout: float) -> Check:
    import serial

    from drivers.card_reader import sam_protocol as sam

    try:
        port = _serial_open(path, baudrate)
    except (serial.SerialException, OSError, ValueError) as e:
        return Check("card_reader", False, f"{path}: {e} (plugged in? see `careterm hw list`)")
    parser = sam.FrameParser()
    try:
        port.write(sam.find_request())
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            frames = parser.feed(port.read(max(1, port.in_waiting)))
            if frames:
                card = "card on the reader" if frames[0].status == sam.SW_FIND_OK else "no card"
                return Check("card_reader", True, f"{path}: ID card module answers ({card})")
    except (serial.SerialException, OSError) as e:
        return Check("card_reader", False, f"{path}: {e}")
    finally:
        port.close()
    return Check("card_reader", False,
                 f"{path}: no answer from the ID card module within {timeout:g} s "
                 f"(power, cable, [card_reader].baudrate = {baudrate}?)")


def _printer_check(cfg: DeviceConfig, config_file: str) -> Check:
    from drivers.base import DeviceState
    from drivers.printer.factory import open_printer

    printer = open_printer(cfg, config_file=config_file, poll_every=None)
    if printer is None:
        return Check("printer", True, "none configured")
    try:
        status = printer.status()
        if printer.state == DeviceState.ABSENT:
            return Check("printer", False, f"{printer.detail} (power, cable, `careterm hw list`)")
        from drivers.printer import dle_eot

        why = dle_eot.problem(status)
        if why:
            return Check("printer", False, f"printer reports {why}")
        if status.online is None:
            return Check("printer", True, "reachable; it does not report status")
        extra = ", paper near end" if status.paper_near_end else ""
        return Check("printer", True, f"online{extra}")
    finally:
        printer.close()


def probe_devices(cfg: DeviceConfig, config_file: str = "device.toml",
                  timeout: float = 1.0) -> list[Check]:
    """Checks for the devices this role uses (a kiosk ignores [buttons], a pad [printer])."""
    out: list[Check] = []
    kiosk = cfg.device.role == "kiosk"
    b = cfg.buttons
    if not kiosk:
        if b.driver == "serial":
            out.append(_port_check("buttons", b.device, b.baudrate, "buttons.device"))
        elif b.driver == "evdev":
            out.append(_input_check("buttons", b.device))
        elif b.driver in ("keyboard", "sim"):
            out.append(Check("buttons", True, "simulated"))
    c = cfg.card_reader
    if c.driver == "idcard":
        out.append(_idcard_check(c.device, c.baudrate, timeout) if c.device
                   else Check("card_reader", False, "no device configured (card_reader.device)"))
    elif c.driver == "serial":
        out.append(_port_check("card_reader", c.device, c.baudrate, "card_reader.device"))
    elif c.driver == "evdev":
        out.append(_input_check("card_reader", c.device))
    elif c.driver in ("keyboard", "sim"):
        out.append(Check("card_reader", True, "simulated"))
    if kiosk and cfg.printer.driver != "none":
        out.append(_printer_check(cfg, config_file))
    return out
