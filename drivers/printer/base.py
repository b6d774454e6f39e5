"""The ticket-printer interface: print a Document, report status changes, never hang the caller."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import DeviceState, Watchable
from drivers.printer.document import Document

log = logging.getLogger("careterm.drivers.printer")


@dataclass(frozen=True)
class PrinterStatus:
    """From `DLE EOT` where the transport can read; None means "cannot tell"."""

    online: bool | None = None
    cover_open: bool | None = None
    paper_near_end: bool | None = None
    paper_out: bool | None = None

    @property
    def known(self) -> bool:
        """False when the printer told nothing ("cannot tell": write-only or silent)."""
        return any(
            v is not None
            for v in (self.online, self.cover_open, self.paper_near_end, self.paper_out)
        )

    @property
    def problem(self) -> str | None:
        """What stops printing, in words for a technician; None when nothing known does."""
        if self.paper_out:
            return "paper out"
        if self.cover_open:
            return "cover open"
        if self.online is False:
            return "offline"
        return None

    def device_state(self, cannot_tell: str = "status not readable") -> tuple[DeviceState, str]:
        """The state a printer in this status shows: a problem is `error`, paper near its end
        `warning`, nothing known `unknown` (with `cannot_tell` as the detail), else `ok`."""
        why = self.problem
        if why:
            return DeviceState.ERROR, why
        if not self.known:
            return DeviceState.UNKNOWN, cannot_tell
        if self.paper_near_end:
            return DeviceState.WARNING, "paper near end"
        return DeviceState.OK, ""

    def to_json(self) -> dict[str, bool | None]:
        return {
            "online": self.online,
            "cover_open": self.cover_open,
            "paper_near_end": self.paper_near_end,
            "paper_out": self.paper_out,
        }


@dataclass(frozen=True)
class PrintResult:
    ok: bool
    error: str | None = None


StatusListener = Callable[[PrinterStatus], None]


class TicketPrinter(Watchable, ABC):
    """State (`Watchable`) says ok/absent/error/unknown; `on_status` hears every status change."""

    def __init__(self, name: str = "printer", *, quiet: bool = False) -> None:
        super().__init__(name, quiet=quiet)
        self._status_listeners: list[StatusListener] = []

    def on_status(self, listener: StatusListener) -> None:
        self._status_listeners.append(listener)

    def _status_changed(self, status: PrinterStatus) -> None:
        for fn in list(self._status_listeners):
            try:
                fn(status)
            except Exception:
                log.exception("%s: status listener failed", self.name)

    @abstractmethod
    def print_document(self, doc: Document, timeout: float = 5.0) -> PrintResult:
        """Render and send; returns within `timeout` even if the printer vanished."""

    @abstractmethod
    def status(self) -> PrinterStatus:
        """Ask the printer now (`DLE EOT`); all None when it cannot tell."""

    def close(self) -> None:
        pass
