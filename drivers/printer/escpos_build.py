"""Renders a ticket `Document` (SPEC 6.0) with python-escpos: pure, no printer, no I/O.

The library's `Escpos` commands do the work (`hw("INIT")`, `set()` for alignment, bold and
character size, `qr()` native `GS ( k` or as an image, `cut()` as the profile allows,
`print_and_feed()`); careterm adds only the Chinese text layer (`drivers.printer.gb18030`:
`FS &`, GB18030 text, wrapping by printed columns). The ticket is built on the library's
`Dummy` and sent to the printer in one deadline-bounded write (`drivers.printer.transports`).

Decisions: double size is `GS ! 0x11` (`set(custom_size=True, width=2, height=2)`), which a
Chinese printer applies to Chinese characters too; `set(double_width=..., double_height=...)`
sends `ESC ! 0x30`, which only enlarges single-byte characters, so a double-size Chinese line
would print at normal size. The QR code is error level M and native where the profile has
`qrCode`; otherwise the library draws it (`qrcode`, one-module border) as a `GS v 0` image no
wider than the paper.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import qrcode
import qrcode.exceptions
from escpos.constants import QR_ECLEVEL_M
from escpos.escpos import Escpos
from escpos.printer import Dummy

from drivers.printer.document import QR, Document, Feed, Rule, Text
from drivers.printer.gb18030 import CHINESE_ON, encode_text, text_width, wrap

DOTS_PER_COLUMN = 12  # Font A: 12 dots wide; 48 columns = 576 dots (80 mm)
QR_BORDER = 1  # python-escpos draws image QR codes with a one-module border
END_FEED_LINES = 4  # `cut = false`: feed the ticket out of the printer


@dataclass(frozen=True)
class TicketStyle:
    columns: int = 48
    encoding: str = "gb18030"
    cut: bool = True
    native_qr: bool = True
    """`GS ( k` QR codes; False prints them as an image (the factory asks the profile)."""
    profile: str = ""
    """python-escpos printer profile (`[printer].profile`); empty: the library's default."""

    @property
    def dots(self) -> int:
        return self.columns * DOTS_PER_COLUMN


class TicketError(ValueError):
    """A document that cannot become a ticket (a QR payload more than a QR code holds); the
    message says why without the payload."""


def qr_modules(data: str) -> int:
    """Modules per side of the QR code python-escpos would draw for `data` (level M)."""
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    q.add_data(data)
    try:
        q.make(fit=True)
    except (ValueError, qrcode.exceptions.DataOverflowError):  # over version 40
        raise TicketError(
            f"QR code: {len(data.encode('utf-8'))} bytes are more than a QR code holds"
        ) from None
    return q.modules_count


def safe_payload(data: str) -> str:
    """The QR payload as the library will encode it: a lone surrogate must not crash a ticket."""
    return data.encode("utf-8", errors="replace").decode("utf-8")


def new_canvas(style: TicketStyle) -> Dummy:
    """A `Dummy` printer with the style's profile, its paper width known to the library."""
    d = Dummy(profile=style.profile or None)
    width = d.profile.profile_data.get("media", {}).get("width", {})
    if not isinstance(width.get("pixels"), int):
        # The library prints a warning to stdout for images on a profile without a width
        # (and cannot keep an image on the paper): give this instance its own copy with ours.
        data = copy.deepcopy(d.profile.profile_data)
        data["media"]["width"]["pixels"] = style.dots
        d.profile.profile_data = data
    return d


def paper_dots(p: Escpos, style: TicketStyle) -> int:
    return min(style.dots, int(p.profile.profile_data["media"]["width"]["pixels"]))


def render(doc: Document, style: TicketStyle, p: Escpos) -> None:
    """Send `doc` to `p` through python-escpos commands plus the GB18030 text layer."""
    p.hw("INIT")
    p._raw(CHINESE_ON)
    for block in doc.blocks:
        if isinstance(block, Text):
            cols = style.columns // 2 if block.double else style.columns
            size = 2 if block.double else 1
            p.set(align=block.align, custom_size=True, width=size, height=size)
            if block.bold:
                p.set(bold=True)
            for line in wrap(block.text, cols, style.encoding):
                p._raw(encode_text(line, style.encoding) + b"\n")
            if block.bold:
                p.set(bold=False)
            if block.double:
                p.set(custom_size=True, width=1, height=1)
        elif isinstance(block, Rule):
            ch = (block.char or "-")[0]
            count = style.columns // max(1, text_width(ch, style.encoding))
            p.set(align="left", custom_size=True, width=1, height=1)
            p._raw(encode_text(ch * count, style.encoding) + b"\n")
        elif isinstance(block, QR):
            p.set(align="center")
            data = safe_payload(block.data) or " "
            # the module size keeps the code on the paper, native or image: a printer does
            # not print a native code wider than its print area
            side = qr_modules(data) + 2 * QR_BORDER
            size = max(1, min(16, block.size, paper_dots(p, style) // side))
            p.qr(data, ec=QR_ECLEVEL_M, size=size, native=style.native_qr)
            p._raw(b"\n")
            p.set(align="left")
        elif isinstance(block, Feed):
            p.print_and_feed(max(0, min(255, block.lines)))
    p.set(align="left")
    if style.cut:
        p.cut()
    else:
        p.print_and_feed(END_FEED_LINES)


def build(doc: Document, style: TicketStyle) -> bytes:
    """The ticket's exact bytes."""
    canvas = new_canvas(style)
    render(doc, style, canvas)
    return canvas.output
