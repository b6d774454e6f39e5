"""The simulated ticket printer: each ticket saved as `.bin` ESC/POS bytes and a `.png` preview.

Faults stay until cleared (`inject("paper_out" | "offline" | "cover_open" | "near_end")`,
`clear()`), like a real printer that stays out of paper until someone reloads it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

from drivers.base import DeviceState
from drivers.printer import dle_eot, preview
from drivers.printer.base import PrinterStatus, PrintResult, TicketPrinter
from drivers.printer.document import Document
from drivers.printer.escpos_build import TicketError, TicketStyle, build

log = logging.getLogger("careterm.drivers.printer.sim")

FAULTS = ("paper_out", "offline", "cover_open", "near_end")


def _slug(title: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", title).strip("-")
    return s[:40] or "ticket"


class SimulatedPrinter(TicketPrinter):
    def __init__(
        self, out_dir: str | Path, style: TicketStyle | None = None, preview: bool = True
    ) -> None:
        super().__init__("printer")
        self.out_dir = Path(out_dir)
        self.style = style or TicketStyle()
        self.preview = preview
        self.faults: set[str] = set()
        self.tickets: list[Path] = []
        self._lock = threading.Lock()
        self._set_state(DeviceState.OK, f"simulated, tickets in {self.out_dir}")

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self.faults.add(fault)
        self._changed()

    def clear(self, fault: str | None = None) -> None:
        if fault is None:
            self.faults.clear()
        else:
            self.faults.discard(fault)
        self._changed()

    def status(self) -> PrinterStatus:
        return PrinterStatus(
            online="offline" not in self.faults,
            cover_open="cover_open" in self.faults,
            paper_near_end="near_end" in self.faults,
            paper_out="paper_out" in self.faults,
        )

    def _changed(self) -> None:
        st = self.status()
        self._set_state(*st.device_state())
        self._status_changed(st)

    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        why = self.status().problem
        if why:
            return PrintResult(False, f"simulated printer: {why}")
        try:
            data = build(doc, self.style)
        except TicketError as e:
            log.warning("printer: ticket %r not printed: %s", doc.title, e)
            return PrintResult(False, f"ticket not printable: {e}")
        with self._lock:
            n = len(self.tickets) + 1
            stem = self.out_dir / f"{n:04d}-{_slug(doc.title)}"
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                stem.with_suffix(".bin").write_bytes(data)
                if self.preview:
                    preview.render(doc, self.style).save(stem.with_suffix(".png"))
            except OSError as e:
                return PrintResult(False, f"{self.out_dir}: {e.strerror}")
            self.tickets.append(stem.with_suffix(".bin"))
        return PrintResult(True)


class PrinterDevice:
    """The printer's side of the wire, for tests and bench setups: keeps what it is sent and
    answers `DLE EOT n` with its status (as a real printer does, even between ticket bytes).

    Faults as in `SimulatedPrinter`: `faults` holds "paper_out", "offline", "cover_open",
    "near_end"; `mute = True` makes it answer nothing (a printer that cannot report).
    """

    def __init__(self) -> None:
        self.received = bytearray()
        self.faults: set[str] = set()
        self.mute = False
        self.status_requests = 0
        self._tail = b""

    def status(self) -> PrinterStatus:
        return PrinterStatus(
            online="offline" not in self.faults,
            cover_open="cover_open" in self.faults,
            paper_near_end="near_end" in self.faults,
            paper_out="paper_out" in self.faults,
        )

    def feed(self, data: bytes) -> bytes:
        """Bytes the printer receives; returns its answers."""
        buf = self._tail + data
        answers = bytearray()
        i = 0
        while True:
            j = buf.find(b"\x10\x04", i)
            if j < 0 or j + 2 >= len(buf):
                break
            self.received += buf[i:j]
            n = buf[j + 2]
            self.status_requests += 1
            table = dle_eot.answer_bytes(self.status())
            if not self.mute and n in table:
                answers.append(table[n])
            i = j + 3
        # keep a possible split "10 04" for the next chunk
        rest = buf[i:]
        keep = 2 if rest.endswith(b"\x10\x04") else 1 if rest.endswith(b"\x10") else 0
        self.received += rest[: len(rest) - keep]
        self._tail = rest[len(rest) - keep :] if keep else b""
        return bytes(answers)

    def serve(
        self, read: Callable[[], bytes], write: Callable[[bytes], object], stop: threading.Event
    ) -> None:
        """Pump: `read()` returns received bytes (b"" when idle), raises OSError when gone."""
        while not stop.is_set():
            try:
                data = read()
            except OSError:
                return
            if data:
                reply = self.feed(data)
                if reply:
                    try:
                        write(reply)
                    except OSError:
                        return
