"""A printer that keeps documents in memory, with injectable faults (for screens and pure flows;
the ESC/POS path is tested with the drivers' file printer)."""

from __future__ import annotations

from drivers.base import DeviceState
from drivers.printer.base import PrinterStatus, PrintResult, TicketPrinter
from drivers.printer.document import Document


class MemoryPrinter(TicketPrinter):
    def __init__(self) -> None:
        super().__init__("printer")
        self.docs: list[Document] = []
        self.fail_next = ""
        self.before_print = lambda: None
        self._set_state(DeviceState.OK)

    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        self.before_print()
        if self.fail_next:
            why, self.fail_next = self.fail_next, ""
            self._set_state(DeviceState.ERROR, why)
            return PrintResult(False, why)
        if self.state != DeviceState.OK:
            return PrintResult(False, self.detail or self.state.value)
        self.docs.append(doc)
        return PrintResult(True)

    def status(self) -> PrinterStatus:
        return PrinterStatus(online=self.state == DeviceState.OK, paper_out=False)

    def set(self, state: DeviceState, detail: str = "") -> None:
        self._set_state(state, detail)
