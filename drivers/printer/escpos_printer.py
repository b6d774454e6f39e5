"""An ESC/POS ticket printer over one python-escpos transport: prints within a deadline,
watches `DLE EOT` status.

A printer that vanishes makes `print_document` return a failed `PrintResult` within its
timeout; the watcher thread notices it coming back. Status listeners (`on_status`) hear
every change of `PrinterStatus`; the `Watchable` state follows it (paper out, cover open,
offline: `error`; paper near end: `warning`; unreachable: `absent`; write-only, or a printer
that never answers: `unknown`, "cannot tell").
"""

from __future__ import annotations

import logging
import threading
import time

from drivers.base import DeviceState
from drivers.printer import dle_eot
from drivers.printer.base import PrinterStatus, PrintResult, TicketPrinter
from drivers.printer.document import Document
from drivers.printer.escpos_build import TicketError, TicketStyle, build
from drivers.printer.transports import Deadlined, TransportError

log = logging.getLogger("careterm.drivers.printer")

STATUS_TIMEOUT_S = 0.3
POLL_EVERY_S = 5.0


class EscposPrinter(TicketPrinter):
    def __init__(
        self, transport: Deadlined, style: TicketStyle, *, poll_every: float | None = POLL_EVERY_S
    ) -> None:
        super().__init__("printer")
        self.transport = transport
        self.style = style
        self._io = threading.Lock()
        self._last_status: PrinterStatus | None = None
        self._answers: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.printed = 0
        if poll_every:
            self._thread = threading.Thread(
                target=self._watch, args=(poll_every,), name="printer-status", daemon=True
            )
            self._thread.start()

    def render(self, doc: Document) -> bytes:
        return build(doc, self.style)

    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        deadline = time.monotonic() + timeout
        try:
            data = self.render(doc)
        except Exception as e:  # the caller gets a failed ticket, never an exception
            why = str(e) if isinstance(e, TicketError) else f"{type(e).__name__} (see the log)"
            if not isinstance(e, TicketError):
                log.exception("printer: ticket %r cannot be rendered", doc.title)
            log.warning("printer: ticket %r not printed: %s", doc.title, why)
            return PrintResult(False, f"ticket not printable: {why}")
        if not self._io.acquire(timeout=max(0.0, timeout)):
            return PrintResult(False, f"{self.transport.name}: busy (a previous job is stuck)")
        try:
            if self.transport.can_read:
                # a printer that takes its time to accept the connection (a dead host's SYNs
                # unanswered) costs the ticket's deadline, not the transport's own 3 s more
                self.transport.connect_within(deadline)
            if self.transport.can_read and self._answers is not False:
                status = self._query_locked(
                    min(STATUS_TIMEOUT_S, max(0.05, deadline - time.monotonic()))
                )
                self._publish(status)
                why = status.problem
                if why:
                    return PrintResult(False, f"{self.transport.name}: {why}")
            self.transport.send(data, deadline)
        except TransportError as e:
            self.transport.close()
            self._set_state(DeviceState.ABSENT, str(e))
            log.warning("printer: ticket %r not printed: %s", doc.title, e)
            return PrintResult(False, str(e))
        finally:
            self._io.release()
        self.printed += 1
        if self.state == DeviceState.ABSENT:
            # it took a ticket, so it is back; the next status poll says more
            self._set_state(DeviceState.UNKNOWN, self.transport.name)
        return PrintResult(True)

    def status(self) -> PrinterStatus:
        if not self._io.acquire(timeout=3.0):
            return PrinterStatus()
        gone: str | None = None
        try:
            status = self._query_locked(STATUS_TIMEOUT_S)
        except TransportError as e:
            self.transport.close()
            gone, status = str(e), PrinterStatus(online=False)
        finally:
            self._io.release()
        self._publish(status, gone)
        return status

    def _query_locked(self, timeout: float) -> PrinterStatus:
        if not self.transport.can_read:
            self.transport.connect()
            return PrinterStatus()
        answers: list[int | None] = []
        for n in (dle_eot.PRINTER, dle_eot.OFFLINE_CAUSE, dle_eot.PAPER):
            self.transport.drain()
            answers.append(self.transport.ask_status(n, timeout))
        # a printer that never answers is not asked again before every ticket (0.9 s each);
        # the watcher keeps asking, and one answer turns the checks back on
        self._answers = any(a is not None for a in answers)
        return dle_eot.parse(*answers)

    def _publish(self, status: PrinterStatus, gone: str | None = None) -> None:
        if gone:
            self._set_state(DeviceState.ABSENT, gone)
        else:
            cannot_tell = (
                "does not answer status (DLE EOT)"
                if self.transport.can_read
                else "status not readable (write-only)"
            )
            self._set_state(*status.device_state(f"{self.transport.name}: {cannot_tell}"))
        if status != self._last_status:
            self._last_status = status
            self._status_changed(status)

    def _watch(self, every: float) -> None:
        while True:
            try:
                self.status()
            except Exception:
                log.exception("printer: status check failed")
            if self._stop.wait(every):
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3.0)
        with self._io:
            self.transport.close()
