"""What the one-byte answers to `DLE EOT n` mean. Pure.

The question goes through python-escpos (`Escpos.query_status`, see `transports.Deadlined`);
its own readings cannot serve here: `is_online()` calls a printer that does not answer
offline, `paper_status()` calls it "paper adequate" (both read an empty answer that way),
neither checks the answer's fixed bits, and there is no cover-open reading (`DLE EOT 2`).
A kiosk must tell "cannot tell" apart from "offline" and "paper ok" (python-escpos issues
#275, #434), so every field here is None unless a valid answer says otherwise.
"""

from __future__ import annotations

from escpos.constants import RT_STATUS

from drivers.printer.base import PrinterStatus

PRINTER = 1  # n = 1: printer status
OFFLINE_CAUSE = 2  # n = 2: why it is offline
PAPER = 4  # n = 4: roll paper sensor

FIXED_MASK = 0x93  # bits 0, 1, 4, 7 are fixed in every answer ...
FIXED_BITS = 0x12  # ... as 0, 1, 1, 0


def request(n: int) -> bytes:
    return RT_STATUS + bytes([n])


def valid_answer(b: int) -> bool:
    return (b & FIXED_MASK) == FIXED_BITS


def parse(printer: int | None, offline_cause: int | None, paper: int | None) -> PrinterStatus:
    """Each argument is the answer byte, or None where the printer did not answer."""

    def ok(b: int | None) -> int | None:
        return b if b is not None and valid_answer(b) else None

    p, o, r = ok(printer), ok(offline_cause), ok(paper)
    online = None if p is None else not (p & 0x08)
    cover = None if o is None else bool(o & 0x04)
    paper_out = None
    if r is not None:
        paper_out = bool(r & 0x60)
    if o is not None and o & 0x20:
        paper_out = True
    near_end = None if r is None else bool(r & 0x0C)
    return PrinterStatus(
        online=online, cover_open=cover, paper_near_end=near_end, paper_out=paper_out
    )


def answer_bytes(status: PrinterStatus) -> dict[int, int]:
    """The bytes a printer in `status` sends for n = 1, 2, 4 (for the simulator and tests)."""
    p = FIXED_BITS | (0x08 if status.online is False else 0)
    o = FIXED_BITS | (0x04 if status.cover_open else 0) | (0x20 if status.paper_out else 0)
    r = FIXED_BITS | (0x0C if status.paper_near_end else 0) | (0x60 if status.paper_out else 0)
    return {PRINTER: p, OFFLINE_CAUSE: o, PAPER: r}


def problem(status: PrinterStatus) -> str | None:
    """What stops printing, in words for a technician; None when nothing known does."""
    return status.problem
