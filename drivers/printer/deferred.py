"""A printer opened later: the kiosk's screen comes first.

Opening the configured printer imports python-escpos with its barcode, QR and imaging libraries
(~50 ms of CPU here, half a second of a Pi-class budget: BENCHMARKS.md). `DeferredPrinter` stands
in for it from the start, in state `unknown` ("opening"), and opens it when `open()` is called
(the kiosk does so once its first frame is on the screen) or, at the latest, for the first
ticket or status question. From then on it passes everything through and repeats the real
printer's state and status changes to its own listeners.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from drivers.base import DeviceState
from drivers.printer.base import PrinterStatus, PrintResult, TicketPrinter
from drivers.printer.document import Document

log = logging.getLogger("careterm.drivers.printer")

OPENING = "opening"


class DeferredPrinter(TicketPrinter):
    """`opener()` makes the real printer (it may raise nothing: failures are its own state)."""

    def __init__(self, opener: Callable[[], TicketPrinter]) -> None:
        super().__init__("printer", quiet=True)  # the real printer logs its own changes
        self._opener = opener
        self._inner: TicketPrinter | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._set_state(DeviceState.UNKNOWN, OPENING)

    @property
    def inner(self) -> TicketPrinter | None:
        return self._inner

    @property
    def transport(self) -> Any:
        """The real printer's transport (what the kiosk asks `can_read` of), once opened."""
        return getattr(self._inner, "transport", None)

    def open(self) -> TicketPrinter | None:
        """Open the real printer now, once; None after `close()`."""
        with self._lock:
            if self._inner is None and not self._closed:
                inner = self._opener()
                inner.on_state(lambda state, detail: self._set_state(state, detail))
                inner.on_status(self._status_changed)
                self._inner = inner
                self._set_state(inner.state, inner.detail)
            return self._inner

    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        inner = self.open()
        if inner is None:
            return PrintResult(False, "printer closed")
        return inner.print_document(doc, timeout)

    def status(self) -> PrinterStatus:
        inner = self.open()
        return inner.status() if inner is not None else PrinterStatus()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()
