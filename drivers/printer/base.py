"""The ticket-printer interface: print a Document, report status changes, never hang the caller."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.base import Watchable
from drivers.printer.document import Document


@dataclass(frozen=True)
class PrinterStatus:
    """From `DLE EOT` where the transport can read; None means "cannot tell"."""

    online: bool | None = None
    cover_open: bool | None = None
    paper_near_end: bool | None = None
    paper_out: bool | None = None

    def to_json(self) -> dict[str, bool | None]:
        return {"online": self.online, "cover_open": self.cover_open,
                "paper_near_end": self.paper_near_end, "paper_out": self.paper_out}


@dataclass(frozen=True)
class PrintResult:
    ok: bool
    error: str | None = None


class TicketPrinter(Watchable):
    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        """Render and send; returns within `timeout` even if the printer vanished."""
        raise NotImplementedError

    def status(self) -> PrinterStatus:
        raise NotImplementedError

    def close(self) -> None:
        pass
