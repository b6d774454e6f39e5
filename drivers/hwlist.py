"""Finds candidate devices for `careterm hw list`: serial ports, input devices, USB printers.

Reads /dev and sysfs only (no device is opened). Every function takes its roots as
arguments so a fake tree can stand in for the machine's.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SERIAL_GLOBS = ("ttyUSB*", "ttyACM*", "ttyAMA*", "ttyS[0-9]*", "serial[0-9]*")
USB_CLASS_PRINTER = "07"


@dataclass
class Found:
    type: str
    device: str
    by_id: list[str] = field(default_factory=list)
    description: str = ""
    usb: str = ""
    """vendor:product in hex, when the device is on USB."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", [])}


def _links(by_id_dir: Path) -> dict[str, list[str]]:
    """Target node -> the stable by-id names pointing at it."""
    out: dict[str, list[str]] = {}
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            try:
                target = str((by_id_dir / os.readlink(link)).resolve())
            except OSError:
                continue
            out.setdefault(target, []).append(str(link))
    return out


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace").strip()
    except OSError:
        return ""


def _usb_parent(sys_dev: Path) -> Path | None:
    """The USB device directory (with idVendor) above a sysfs device, if any."""
    try:
        p = sys_dev.resolve()
    except OSError:
        return None
    for up in (p, *p.parents):
        if (up / "idVendor").is_file():
            return up
    return None


def _usb_desc(usb: Path | None) -> tuple[str, str]:
    if usb is None:
        return "", ""
    vid, pid = _read(usb / "idVendor"), _read(usb / "idProduct")
    name = " ".join(x for x in (_read(usb / "manufacturer"), _read(usb / "product")) if x)
    return (f"{vid}:{pid}" if vid and pid else ""), name


def serial_ports(dev: Path = Path("/dev"), sys_class: Path = Path("/sys/class/tty")) -> list[Found]:
    links = _links(dev / "serial" / "by-id")
    nodes: set[str] = set()
    for pattern in SERIAL_GLOBS:
        nodes.update(str(p) for p in dev.glob(pattern))
    nodes.update(links)
    out = []
    for node in sorted(nodes):
        name = Path(node).name
        sysdev = sys_class / name / "device"
        if name.startswith("ttyS") and not sysdev.exists() and node not in links:
            continue  # legacy 8250 ports that exist on every PC
        usb, desc = _usb_desc(_usb_parent(sysdev) if sysdev.exists() else None)
        out.append(Found("serial", node, links.get(node, []), desc, usb))
    return out


def input_devices(
    dev: Path = Path("/dev"), proc_devices: Path = Path("/proc/bus/input/devices")
) -> list[Found]:
    links = _links(dev / "input" / "by-id")
    names: dict[str, str] = {}
    text = _read(proc_devices)
    for block in text.split("\n\n"):
        m_name = re.search(r'^N: Name="(.*)"$', block, re.M)
        m_ev = re.search(r"^H: Handlers=.*?\b(event\d+)\b", block, re.M)
        if m_name and m_ev:
            names[str(dev / "input" / m_ev.group(1))] = m_name.group(1)
    nodes = set(names) | set(links) | {str(p) for p in (dev / "input").glob("event*")}
    out = []
    for node in sorted(nodes):
        usb, _ = _usb_desc(_usb_parent(Path("/sys/class/input") / Path(node).name / "device"))
        out.append(Found("input", node, links.get(node, []), names.get(node, ""), usb))
    return out


def usb_printers(
    sys_usb: Path = Path("/sys/bus/usb/devices"), sys_usbmisc: Path = Path("/sys/class/usbmisc")
) -> list[Found]:
    lp_nodes: dict[str, str] = {}
    if sys_usbmisc.is_dir():
        for node in sys_usbmisc.glob("lp*"):
            usb = _usb_parent(node / "device")
            if usb is not None:
                lp_nodes[str(usb)] = f"/dev/usb/{node.name}"
    out = []
    if not sys_usb.is_dir():
        return out
    for iface in sorted(sys_usb.glob("*:*")):
        if _read(iface / "bInterfaceClass") != USB_CLASS_PRINTER:
            continue
        usb = _usb_parent(iface)
        vidpid, desc = _usb_desc(usb)
        node = lp_nodes.get(str(usb), "") if usb else ""
        out.append(Found("usb_printer", node or f"usb {vidpid}", [], desc, vidpid))
    return out


def list_all() -> list[Found]:
    return [*serial_ports(), *input_devices(), *usb_printers()]
