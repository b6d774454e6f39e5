"""Printers on real transports (pty, TCP, file), DLE EOT status as state changes, vanishing printers, the simulator."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from drivers.base import DeviceState
from drivers.printer import dle_eot
from drivers.printer.base import PrinterStatus
from drivers.printer.deferred import DeferredPrinter
from drivers.printer.document import QR, Document, Text
from drivers.printer.escpos_build import TicketStyle
from drivers.printer.escpos_decode import decode
from drivers.printer.escpos_printer import EscposPrinter
from drivers.printer.factory import open_printer
from drivers.printer.sim import PrinterDevice, SimulatedPrinter
from drivers.printer.transports import (
    DevicePrinter,
    FilePrinter,
    NetworkPrinter,
    SerialPrinter,
    UsbPrinter,
    find_usblp,
)
from tests.conftest import wait_for
from tests.drivers.conftest import LocalTcpServer

STYLE = TicketStyle(columns=32)
# The promise under test is "returns, with a failure, instead of hanging" (a hung write or
# connect would take minutes or forever); the margin is generous so machine load never fails it.
HANG_MARGIN_S = 5.0
DOC = Document(
    (Text("挂号凭条", align="center"), Text("B023", double=True), QR("CT1:A-0042")), title="checkin"
)


def test_dle_eot_answers_parse() -> None:
    assert dle_eot.request(4) == b"\x10\x04\x04"
    assert dle_eot.parse(0x12, 0x12, 0x12) == PrinterStatus(True, False, False, False)
    assert dle_eot.parse(0x1A, 0x16, 0x12).online is False  # offline, cover open
    assert dle_eot.parse(0x1A, 0x16, 0x12).cover_open is True
    assert dle_eot.parse(0x12, 0x12, 0x1E) == PrinterStatus(True, False, True, False)
    assert dle_eot.parse(0x12, 0x32, 0x72).paper_out is True
    assert dle_eot.parse(None, None, None) == PrinterStatus()
    assert dle_eot.parse(0xFF, 0x00, 0x12).online is None  # not a status byte
    for st in (PrinterStatus(True, False, False, False), PrinterStatus(False, True, True, True)):
        a = dle_eot.answer_bytes(st)
        assert dle_eot.parse(a[1], a[2], a[4]) == st


class Served:
    """A `PrinterDevice` answering on a pty master; `set()` stops it and waits, so a later
    test's pty that reuses the file descriptor number is never read by this one."""

    def __init__(self, pty, device: PrinterDevice) -> None:
        self._stop = threading.Event()
        fd = pty.master

        def read() -> bytes:
            r, _, _ = select.select([fd], [], [], 0.05)
            return os.read(fd, 65536) if r else b""

        self._thread = threading.Thread(
            target=device.serve, args=(read, lambda b: os.write(fd, b), self._stop), daemon=True
        )
        self._thread.start()

    def set(self) -> None:
        self._stop.set()
        self._thread.join(2)


def serve_pty(pty, device: PrinterDevice) -> Served:
    return Served(pty, device)


def test_serial_printer_prints_and_reports_status_changes(pty) -> None:
    device = PrinterDevice()
    stop = serve_pty(pty, device)
    changes: list[PrinterStatus] = []
    p = EscposPrinter(SerialPrinter(pty.path, 9600), STYLE, poll_every=0.1)
    p.on_status(changes.append)
    try:
        wait_for(lambda: p.state == DeviceState.OK, 5, what="first status")
        assert p.print_document(DOC).ok
        wait_for(lambda: decode(bytes(device.received)).cut, 5, what="ticket received")
        t = decode(bytes(device.received))
        assert t.find("挂号凭条") and t.find("B023").double and t.qr == ["CT1:A-0042"]
        device.faults.add("paper_out")
        wait_for(lambda: p.state == DeviceState.ERROR, 5, what="paper out noticed")
        assert p.detail == "paper out"
        before = len(device.received)
        result = p.print_document(DOC)
        assert not result.ok and "paper out" in (result.error or "")
        assert len(device.received) == before  # nothing sent into an empty printer
        device.faults = {"cover_open"}
        wait_for(lambda: p.detail == "cover open", 5)
        device.faults = {"near_end"}
        wait_for(lambda: p.state == DeviceState.WARNING, 5, what="near end noticed")
        assert p.detail == "paper near end"  # what the kiosk's printer alert hears
        assert p.status().paper_near_end is True
        assert p.print_document(DOC).ok  # near end still prints
        device.faults = set()
        wait_for(lambda: p.state == DeviceState.OK, 5, what="new roll noticed")
        assert [c.paper_out for c in changes][:3] == [False, True, False]
    finally:
        p.close()
        stop.set()


def test_vanished_serial_printer_fails_fast_and_comes_back(plugged_pty) -> None:
    port = plugged_pty("usb-Printer_Serial-if00")
    device = PrinterDevice()
    stop = serve_pty(port.pty, device)
    p = EscposPrinter(SerialPrinter(port.path, 9600), STYLE, poll_every=None)
    try:
        assert p.print_document(DOC).ok
        stop.set()
        port.unplug()
        t0 = time.monotonic()
        result = p.print_document(DOC, timeout=2.0)
        assert not result.ok and time.monotonic() - t0 < 2.0 + HANG_MARGIN_S
        assert p.state == DeviceState.ABSENT
        assert p.status() == PrinterStatus(online=False)
        port.plug()
        device2 = PrinterDevice()
        stop = serve_pty(port.pty, device2)
        assert p.print_document(DOC).ok
        assert p.state == DeviceState.OK
        wait_for(lambda: decode(bytes(device2.received)).cut, 5)
    finally:
        p.close()
        stop.set()


def test_printer_that_never_answers_status_is_unknown_but_prints(pty) -> None:
    device = PrinterDevice()
    device.mute = True
    stop = serve_pty(pty, device)
    p = EscposPrinter(SerialPrinter(pty.path, 9600), STYLE, poll_every=None)
    try:
        assert p.status() == PrinterStatus()
        assert not p.status().known
        assert p.state == DeviceState.UNKNOWN  # "cannot tell": neither offline nor ok
        assert "does not answer status" in p.detail
        assert p.print_document(DOC).ok
        assert p.state == DeviceState.UNKNOWN
        device.mute = False  # it starts answering: known again
        assert p.status().online is True and p.state == DeviceState.OK
    finally:
        p.close()
        stop.set()


class TcpPrinter(LocalTcpServer):
    """A network printer on a local port, one connection at a time."""

    def __init__(self) -> None:
        self.device = PrinterDevice()
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)

        def read() -> bytes:
            try:
                data = conn.recv(65536)
            except TimeoutError:
                return b""
            if not data:
                raise OSError("closed")
            return data

        self.device.serve(read, conn.sendall, self.stop)
        conn.close()


def test_network_printer_status_and_ticket() -> None:
    srv = TcpPrinter()
    p = EscposPrinter(NetworkPrinter.parse(f"127.0.0.1:{srv.port}"), STYLE, poll_every=None)
    try:
        assert p.status() == PrinterStatus(True, False, False, False)
        assert p.print_document(DOC).ok
        wait_for(lambda: decode(bytes(srv.device.received)).cut, 5)
        srv.device.faults.add("offline")
        assert p.status().online is False and p.state == DeviceState.ERROR
    finally:
        p.close()
        srv.close()


def test_unreachable_network_printer_never_hangs() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there
    p = EscposPrinter(NetworkPrinter("127.0.0.1", port), STYLE, poll_every=None)
    t0 = time.monotonic()
    result = p.print_document(DOC, timeout=1.0)
    assert not result.ok and "cannot connect" in (result.error or "")
    assert time.monotonic() - t0 < 1.0 + HANG_MARGIN_S
    assert p.state == DeviceState.ABSENT
    p.close()


def test_blocked_device_write_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a printer that never takes data
    try:
        p = EscposPrinter(DevicePrinter(str(fifo)), STYLE, poll_every=None)
        big = Document(tuple(Text("满" * 16) for _ in range(8000)))
        t0 = time.monotonic()
        result = p.print_document(big, timeout=0.5)
        assert not result.ok and "timed out" in (result.error or "")
        assert time.monotonic() - t0 < 0.5 + HANG_MARGIN_S
        p.close()
    finally:
        os.close(reader)


def test_file_transport_appends_or_writes_one_file_per_ticket(tmp_path: Path) -> None:
    f = tmp_path / "out.bin"
    f.write_bytes(b"\x1b@earlier\n")  # python-escpos's File would truncate this; we append
    p = EscposPrinter(FilePrinter(str(f)), STYLE, poll_every=None)
    assert p.print_document(DOC).ok and p.print_document(DOC).ok
    data = f.read_bytes()
    assert data.startswith(b"\x1b@earlier\n") and data.count(b"\x1bd\x06\x1dV\x00") == 2
    assert decode(data).qr == ["CT1:A-0042", "CT1:A-0042"]
    assert p.status() == PrinterStatus() and p.state == DeviceState.UNKNOWN
    folder = tmp_path / "tickets"
    folder.mkdir()
    ft = FilePrinter(str(folder))
    p2 = EscposPrinter(ft, STYLE, poll_every=None)
    assert p2.print_document(DOC).ok and p2.print_document(DOC).ok
    assert len(list(folder.glob("*.bin"))) == 2
    assert decode(ft.written[0].read_bytes()).qr == ["CT1:A-0042"]


def fake_usb_tree(root: Path, vid: str, pid: str, lp: str) -> Path:
    usbdev = root / "devices" / "usb1" / "1-1"
    iface = usbdev / "1-1:1.0"
    iface.mkdir(parents=True)
    (usbdev / "idVendor").write_text(vid + "\n")
    (usbdev / "idProduct").write_text(pid + "\n")
    misc = root / "class" / "usbmisc" / lp
    misc.mkdir(parents=True)
    os.symlink(iface, misc / "device")
    return root / "class" / "usbmisc"


def test_usb_printer_found_by_vendor_product_in_sysfs(tmp_path: Path) -> None:
    misc = fake_usb_tree(tmp_path, "0416", "5011", "lp3")
    assert find_usblp(0x0416, 0x5011, misc) == "/dev/usb/lp3"
    assert find_usblp(0x04B8, 0x0202, misc) is None
    assert find_usblp(0x0416, 0x5011, tmp_path / "nothing") is None
    t = UsbPrinter(0x04B8, 0x0202, misc)
    with pytest.raises(OSError, match="04b8:0202: not found"):
        t.open()


def test_simulated_printer_writes_bin_and_png_and_obeys_faults(tmp_path: Path) -> None:
    p = SimulatedPrinter(tmp_path / "tickets", STYLE)
    seen: list[PrinterStatus] = []
    p.on_status(seen.append)
    assert p.print_document(DOC).ok
    binfile = p.tickets[0]
    assert binfile.name == "0001-checkin.bin"
    t = decode(binfile.read_bytes())
    assert t.find("挂号凭条") and t.find("B023").double and t.qr == ["CT1:A-0042"] and t.cut
    img = Image.open(binfile.with_suffix(".png"))
    assert img.width == 32 * 12 + 32 and img.height > 200
    # the preview is not blank: the CJK font drew something in the title line
    assert img.crop((0, 0, img.width, 40)).getextrema()[0] < 128
    p.inject("paper_out")
    r = p.print_document(DOC)
    assert not r.ok and "paper out" in (r.error or "") and p.state == DeviceState.ERROR
    assert seen[-1].paper_out
    p.clear()
    p.inject("offline")
    assert not p.print_document(DOC).ok and p.status().online is False
    p.clear()
    assert p.print_document(DOC).ok and len(p.tickets) == 2 and p.state == DeviceState.OK
    p.inject("near_end")
    assert p.state == DeviceState.WARNING and p.detail == "paper near end"
    assert seen[-1].paper_near_end and p.print_document(DOC).ok
    p.clear()
    assert p.state == DeviceState.OK
    with pytest.raises(ValueError):
        p.inject("on_fire")


def test_factory_builds_each_printer(make_cfg, tmp_path: Path) -> None:
    assert open_printer(make_cfg(printer={"driver": "none"})) is None
    sim = open_printer(make_cfg(printer={"driver": "sim", "columns": 32}), out_dir=tmp_path / "t")
    assert isinstance(sim, SimulatedPrinter) and sim.out_dir == tmp_path / "t"
    sim2 = open_printer(make_cfg(printer={"driver": "sim", "device": str(tmp_path / "d")}))
    assert sim2.out_dir == tmp_path / "d"
    sim3 = open_printer(make_cfg(printer={"driver": "sim"}))
    assert sim3.out_dir == tmp_path / "data" / "tickets"
    f = open_printer(make_cfg(printer={"driver": "file", "device": str(tmp_path / "p.bin")}))
    assert isinstance(f, EscposPrinter) and isinstance(f.transport, FilePrinter)
    assert f.print_document(DOC).ok
    net = open_printer(
        make_cfg(printer={"driver": "network", "device": "10.0.0.9:9100"}), poll_every=None
    )
    assert isinstance(net.transport, NetworkPrinter) and net.transport.port == 9100
    usb = open_printer(make_cfg(printer={"driver": "usb", "profile": "ZJ-5870"}), poll_every=None)
    assert isinstance(usb.transport, UsbPrinter) and usb.style.native_qr is False
    for p in (f, net, usb):
        p.close()


def test_usb_printer_unplugged_and_back_as_another_lp_node(tmp_path: Path) -> None:
    """sysfs and /dev/usb are faked; the lp node is a pty the printer side answers on."""
    from tests.conftest import Pty

    sysroot, devdir = tmp_path / "sys", tmp_path / "dev-usb"
    devdir.mkdir()

    def plug(lp: str) -> tuple[Pty, Served, PrinterDevice, Path]:
        misc = fake_usb_tree(sysroot / lp, "0416", "5011", lp)
        (sysroot / "class").mkdir(exist_ok=True)
        pty = Pty()
        os.symlink(pty.path, devdir / lp)
        device = PrinterDevice()
        return pty, serve_pty(pty, device), device, misc

    pty, served, device, misc0 = plug("lp0")
    misc_root = tmp_path / "usbmisc"
    misc_root.mkdir()
    os.symlink(misc0 / "lp0", misc_root / "lp0")
    states: list[DeviceState] = []
    p = EscposPrinter(UsbPrinter(0x0416, 0x5011, misc_root, str(devdir)), STYLE, poll_every=0.1)
    p.on_state(lambda st, d: states.append(st))
    try:
        wait_for(lambda: p.state == DeviceState.OK, 5)
        assert p.print_document(DOC).ok
        wait_for(lambda: decode(bytes(device.received)).cut, 5)
        served.set()  # unplug: the node and its sysfs entry go away
        pty.close()
        (misc_root / "lp0").unlink()
        (devdir / "lp0").unlink()
        wait_for(lambda: p.state == DeviceState.ABSENT, 5, what="watcher notices the unplug")
        wait_for(lambda: "not found" in p.detail, 5, what="the next poll looks for it again")
        pty, served, device, misc1 = plug("lp1")
        os.symlink(misc1 / "lp1", misc_root / "lp1")
        wait_for(lambda: p.state == DeviceState.OK, 5, what="watcher finds lp1")
        assert p.print_document(DOC).ok
        wait_for(lambda: decode(bytes(device.received)).cut, 5)
        assert states.count(DeviceState.ABSENT) == 1
    finally:
        p.close()
        served.set()
        pty.close()


def test_file_printer_whose_folder_cannot_be_made_is_a_fault_not_an_exception(
    make_cfg, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    p = open_printer(make_cfg(printer={"driver": "file", "device": str(blocker / "t" / "p.bin")}))
    assert p is not None and p.state == DeviceState.ERROR
    assert "cannot create the folder" in p.detail and "[printer].device" in p.detail
    result = p.print_document(DOC)
    assert not result.ok and "cannot create the folder" in (result.error or "")
    assert not p.status().known
    p.close()


def test_transports_are_python_escpos_printers(make_cfg, tmp_path: Path) -> None:
    """The library's classes carry the bytes; careterm only bounds them by deadlines."""
    from escpos import printer as lib
    from escpos.escpos import Escpos

    f = open_printer(make_cfg(printer={"driver": "file", "device": str(tmp_path / "p.bin")}))
    net = open_printer(
        make_cfg(printer={"driver": "network", "device": "127.0.0.1:9"}), poll_every=None
    )
    ser = open_printer(
        make_cfg(printer={"driver": "serial", "device": "/dev/null-serial"}), poll_every=None
    )
    assert isinstance(f.transport, lib.File) and isinstance(f.transport, Escpos)
    assert isinstance(net.transport, lib.Network)
    assert isinstance(ser.transport, lib.Serial)
    for p in (f, net, ser):
        p.close()


def test_deferred_printer_opens_when_told_and_repeats_the_real_ones_news(pty) -> None:
    """The kiosk's screen comes first: the printer stands in as `unknown` ("opening"), opens on
    `open()` (or its first ticket), and then reports the real printer's states and statuses."""
    device = PrinterDevice()
    stop = serve_pty(pty, device)
    opened: list[EscposPrinter] = []

    def opener() -> EscposPrinter:
        opened.append(EscposPrinter(SerialPrinter(pty.path, 9600), STYLE, poll_every=0.1))
        return opened[-1]

    p = DeferredPrinter(opener)
    states: list[DeviceState] = []
    changes: list[PrinterStatus] = []
    p.on_state(lambda s, d: states.append(s))
    p.on_status(changes.append)
    try:
        assert (p.state, p.detail) == (DeviceState.UNKNOWN, "opening") and not opened
        assert p.transport is None
        assert p.open() is opened[0] and p.open() is opened[0]  # once
        assert p.transport is opened[0].transport and p.transport.can_read
        wait_for(lambda: p.state == DeviceState.OK, 5, what="the real printer's first status")
        device.faults.add("paper_out")
        wait_for(lambda: p.state == DeviceState.ERROR, 5, what="paper out repeated")
        assert p.detail == "paper out" and not p.print_document(DOC).ok
        device.faults = set()
        wait_for(lambda: p.state == DeviceState.OK, 5, what="new roll repeated")
        assert p.print_document(DOC).ok
        wait_for(lambda: decode(bytes(device.received)).cut, 5, what="ticket received")
        assert states[:3] == [DeviceState.OK, DeviceState.ERROR, DeviceState.OK]
        assert [c.paper_out for c in changes][:3] == [False, True, False]
    finally:
        p.close()
        stop.set()
    assert p.open() is None and not p.print_document(DOC).ok  # closed stays closed


def test_deferred_printer_opens_for_its_first_ticket_and_never_after_close(tmp_path) -> None:
    out = tmp_path / "p.bin"
    made: list[EscposPrinter] = []
    p = DeferredPrinter(lambda: made.append(EscposPrinter(FilePrinter(out), STYLE)) or made[-1])
    assert p.print_document(DOC).ok and len(made) == 1  # opened by the ticket itself
    assert decode(out.read_bytes()).qr == ["CT1:A-0042"]
    p.close()
    never = DeferredPrinter(lambda: made.append(EscposPrinter(FilePrinter(out), STYLE)) or made[-1])
    never.close()
    assert never.open() is None and never.status() == PrinterStatus() and len(made) == 1
