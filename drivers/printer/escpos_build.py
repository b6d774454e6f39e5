"""Renders a ticket `Document` to ESC/POS bytes (SPEC 6.0). Pure: no printer, no I/O.

Built here rather than with python-escpos's `text()`/`qr()` because a Chinese ticket needs
`FS &` before GB18030 text, characters outside the printer's double-byte font replaced
(GB18030 four-byte sequences print as garbage), native `GS ( k` QR by default, and bytes we
can test exactly. Wrapping counts display columns: a wide (CJK) character takes two.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from drivers.printer.document import QR, Document, Feed, Rule, Text

ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
LF = b"\n"

INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."
ALIGN = {"left": ESC + b"a\x00", "center": ESC + b"a\x01", "right": ESC + b"a\x02"}
BOLD_ON = ESC + b"E\x01"
BOLD_OFF = ESC + b"E\x00"
SIZE_NORMAL = GS + b"!\x00"
SIZE_DOUBLE = GS + b"!\x11"  # double width and double height
CUT = GS + b"VA\x03"  # feed 3 lines, then cut (function B, full cut)
QR_EC_M = 0x31
DOTS_PER_COLUMN = 12  # Font A: 12 dots wide; 48 columns = 576 dots (80 mm)
REPLACEMENT = "?"


def feed(n: int) -> bytes:
    return ESC + b"d" + bytes([max(0, min(255, n))])


def _is_gb(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() in (
        "gb18030",
        "gbk",
        "gb2312",
        "cp936",
    )


def char_width(ch: str, encoding: str = "gb18030") -> int:
    """Columns a character takes on paper.

    A Chinese printer prints every double-byte character full width, including the
    "ambiguous" ones (`：`, `·`, `═`, `①`) a terminal would print narrow: count bytes.
    """
    if _is_gb(encoding):
        try:
            n = len(ch.encode(encoding))
        except UnicodeEncodeError:
            return 1
        return 2 if n == 2 else 1  # four-byte sequences print as a single `?`
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(s: str, encoding: str = "gb18030") -> int:
    return sum(char_width(c, encoding) for c in s)


def wrap(text: str, columns: int, encoding: str = "gb18030") -> list[str]:
    """Greedy wrap by printed columns; ASCII words break at spaces when they can."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur, width = "", 0
        for ch in para:
            w = char_width(ch, encoding)
            if width + w > columns:
                cut = cur.rfind(" ")
                if ch != " " and cut > 0 and cur[cut + 1 :].isascii():
                    lines.append(cur[:cut].rstrip())
                    cur = cur[cut + 1 :]
                else:
                    lines.append(cur.rstrip())
                    cur = ""
                width = text_width(cur, encoding)
                if ch == " " and not cur:
                    continue
            cur += ch
            width += w
        lines.append(cur.rstrip())
    return lines


def encode_text(s: str, encoding: str) -> bytes:
    """Characters the printer's font cannot hold become `?` (never multi-byte garbage)."""
    out = bytearray()
    gb = _is_gb(encoding)
    for ch in s:
        try:
            b = ch.encode(encoding)
        except UnicodeEncodeError:
            b = REPLACEMENT.encode()
        if gb and len(b) > 2:
            b = REPLACEMENT.encode()
        if len(b) == 1 and b[0] < 0x20:
            b = b" "
        out += b
    return bytes(out)


def qr_native(data: str, size: int) -> bytes:
    """GS ( k: model 2, module size, error level M, store, print."""
    payload = data.encode("utf-8", errors="replace")  # a lone surrogate must not crash a ticket
    n = len(payload) + 3
    return (
        GS
        + b"(k\x04\x001A2\x00"
        + GS
        + b"(k\x03\x001C"
        + bytes([max(1, min(16, size))])
        + GS
        + b"(k\x03\x001E"
        + bytes([QR_EC_M])
        + GS
        + b"(k"
        + bytes([n & 0xFF, n >> 8])
        + b"1P0"
        + payload
        + GS
        + b"(k\x03\x001Q0"
    )


def qr_matrix(data: str) -> list[list[bool]]:
    import qrcode

    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    q.add_data(data.encode("utf-8", errors="replace"))
    q.make(fit=True)
    return [list(row) for row in q.get_matrix()]


def raster(rows: list[list[bool]]) -> bytes:
    """GS v 0: a 1-bit raster image, MSB first, rows padded to whole bytes."""
    height = len(rows)
    width = len(rows[0]) if rows else 0
    wb = (width + 7) // 8
    body = bytearray()
    for row in rows:
        line = bytearray(wb)
        for x, dot in enumerate(row):
            if dot:
                line[x >> 3] |= 0x80 >> (x & 7)
        body += line
    return GS + b"v0\x00" + bytes([wb & 0xFF, wb >> 8, height & 0xFF, height >> 8]) + bytes(body)


def qr_image(data: str, size: int, max_dots: int) -> bytes:
    """The QR as a raster image, for printers whose profile has no native QR."""
    matrix = qr_matrix(data)
    quiet = 4
    n = len(matrix) + 2 * quiet
    scale = max(1, min(size, max_dots // n))
    rows: list[list[bool]] = []
    padded = (
        [[False] * n] * quiet
        + [[False] * quiet + r + [False] * quiet for r in matrix]
        + [[False] * n] * quiet
    )
    for r in padded:
        row = [d for d in r for _ in range(scale)]
        rows.extend([row] * scale)
    return raster(rows)


@dataclass(frozen=True)
class TicketStyle:
    columns: int = 48
    encoding: str = "gb18030"
    cut: bool = True
    native_qr: bool = True

    @property
    def dots(self) -> int:
        return self.columns * DOTS_PER_COLUMN


def build(doc: Document, style: TicketStyle) -> bytes:
    out = bytearray(INIT + CHINESE_ON)
    for block in doc.blocks:
        if isinstance(block, Text):
            cols = style.columns // 2 if block.double else style.columns
            out += ALIGN[block.align]
            out += SIZE_DOUBLE if block.double else SIZE_NORMAL
            if block.bold:
                out += BOLD_ON
            for line in wrap(block.text, cols, style.encoding):
                out += encode_text(line, style.encoding) + LF
            if block.bold:
                out += BOLD_OFF
            if block.double:
                out += SIZE_NORMAL
        elif isinstance(block, Rule):
            ch = block.char or "-"
            count = style.columns // max(1, text_width(ch[0], style.encoding))
            out += ALIGN["left"] + SIZE_NORMAL + encode_text(ch[0] * count, style.encoding) + LF
        elif isinstance(block, QR):
            out += ALIGN["center"]
            if style.native_qr:
                out += qr_native(block.data, block.size) + LF
            else:
                out += qr_image(block.data, block.size, style.dots) + LF
            out += ALIGN["left"]
        elif isinstance(block, Feed):
            out += feed(block.lines)
    out += ALIGN["left"]
    if style.cut:
        out += CUT
    else:
        out += feed(4)
    return bytes(out)
