"""Printers and tickets against hostile input: a QR payload no QR code holds, a native QR wider
than the paper, a device that never stops talking, a host that never accepts the connection."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

from drivers.base import DeviceState
from drivers.printer.document import QR, Document, Text
from drivers.printer.escpos_build import TicketStyle, build, qr_modules
from drivers.printer.escpos_decode import decode
from drivers.printer.escpos_printer import EscposPrinter
from drivers.printer.sim import SimulatedPrinter
from drivers.printer.transports import FilePrinter, NetworkPrinter
from tests.drivers.conftest import LocalTcpServer

STYLE = TicketStyle(columns=32)  # 58 mm: 384 dots
HANG_MARGIN_S = 5.0
TOO_LONG = "A" * 8000  # over the 3391 alphanumeric characters of QR version 40-M


@pytest.mark.parametrize("native", [True, False])
def test_a_qr_payload_no_qr_code_holds_is_a_failed_ticket_not_an_exception(
    tmp_path: Path, native: bool, caplog
) -> None:
    out = tmp_path / "ticket.bin"
    p = EscposPrinter(
        FilePrinter(str(out)), TicketStyle(columns=32, native_qr=native), poll_every=None
    )
    doc = Document((Text("B023", double=True), QR(TOO_LONG)), title="checkin B023")
    result = p.print_document(doc)
    assert not result.ok
    assert "QR code" in (result.error or "") and "8000 bytes" in (result.error or "")
    assert not out.exists() or out.read_bytes() == b""  # nothing half-printed
    assert TOO_LONG not in caplog.text and "QR code" in caplog.text
    assert p.print_document(Document((QR("CT1:A-0042"),))).ok  # the next ticket prints
    p.close()
    sim = SimulatedPrinter(tmp_path / "sim", STYLE)
    assert not sim.print_document(doc).ok and sim.tickets == []


def test_a_native_qr_code_is_kept_within_the_paper() -> None:
    """A printer does not print a native QR code wider than its print area: the module size
    shrinks as it does for an image."""
    data = "CT1:" + "A" * 300  # version 12 or so: 65 modules
    side = qr_modules(data) + 2
    out = build(Document((QR(data, size=8),)), STYLE)
    m = re.search(rb"\x1d\(k\x03\x001C(.)", out, re.S)
    assert m is not None
    size = m.group(1)[0]
    assert size >= 1 and side * size <= STYLE.dots
    assert decode(out).qr == [data]
    # a small code keeps its size
    small = build(Document((QR("CT1:A-0042", size=6),)), STYLE)
    assert b"\x1d(k\x03\x001C\x06" in small


class ChattyHost(LocalTcpServer):
    """Something on port 9100 that sends without pause and never reads (a wrong service, a
    device in a debug mode)."""

    def serve(self, conn: socket.socket) -> None:
        threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        with conn:
            while not self.stop.is_set():
                try:
                    conn.sendall(b"\x00" * 65536)
                except TimeoutError:
                    continue
                except OSError:
                    return


def test_a_device_that_never_stops_sending_cannot_hold_a_ticket() -> None:
    host = ChattyHost()
    p = EscposPrinter(NetworkPrinter("127.0.0.1", host.port), STYLE, poll_every=None)
    done: list[object] = []
    t = threading.Thread(target=lambda: done.append(p.print_document(Document((Text("x"),)))))
    try:
        t.start()
        t.join(5.0 + HANG_MARGIN_S)
        assert done, "print_document hung on a device that never stops sending"
        # its answers make no sense: "cannot tell", never "ok"
        assert p.state in (DeviceState.UNKNOWN, DeviceState.ABSENT)
    finally:
        host.close()
        if not t.is_alive():
            p.close()


def test_a_host_that_never_accepts_costs_the_ticket_deadline_only() -> None:
    """SYNs unanswered (the host is gone; here: a full accept queue): the connect gives up at
    the ticket's deadline, not after the transport's own connect timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue: further SYNs are dropped
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    try:
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel accepts past the backlog")
        except TimeoutError:
            pass
        finally:
            probe.close()
        transport = NetworkPrinter("127.0.0.1", port)
        transport.timeout = 60.0  # the transport alone would wait a minute
        p = EscposPrinter(transport, STYLE, poll_every=None)
        t0 = time.monotonic()
        result = p.print_document(Document((Text("x"),)), timeout=1.0)
        took = time.monotonic() - t0
        assert not result.ok and "cannot connect" in (result.error or "")
        assert took < 1.0 + HANG_MARGIN_S
        assert p.state == DeviceState.ABSENT and f"127.0.0.1:{port}" in p.detail
        p.close()
    finally:
        for s in fillers:
            s.close()
        srv.close()
