"""A PNG picture of a ticket as the paper would show it (Pillow and a CJK font), for the simulator."""

from __future__ import annotations

import functools
import logging

import qrcode
from PIL import Image, ImageDraw, ImageFont

from drivers.printer.document import QR, Document, Feed, Rule, Text
from drivers.printer.escpos_build import TicketStyle, safe_payload
from drivers.printer.gb18030 import encode_text, text_width, wrap
from terminal.fonts import find_cjk_font

log = logging.getLogger("careterm.drivers.preview")

CELL_W = 12  # dots per column, like Font A
LINE_H = 30
MARGIN = 16


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR code's modules (level M, as the printer draws it), True for a dark module."""
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    q.add_data(safe_payload(data))
    q.make(fit=True)
    return [list(row) for row in q.get_matrix()]


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    path = find_cjk_font()
    if path is None:
        log.warning(
            "preview: no CJK font found (install fonts-wqy-microhei); Chinese shows as boxes"
        )
        return ImageFont.load_default()
    return ImageFont.truetype(path, size)


def render(doc: Document, style: TicketStyle) -> Image.Image:
    width = style.columns * CELL_W + 2 * MARGIN
    parts: list[tuple[str, object]] = []
    height = MARGIN
    for block in doc.blocks:
        if isinstance(block, Text):
            cols = style.columns // 2 if block.double else style.columns
            for line in wrap(block.text, cols, style.encoding):
                # show what the printer's font will print, `?` replacements included
                line = encode_text(line, style.encoding).decode(style.encoding, errors="replace")
                h = LINE_H * (2 if block.double else 1)
                parts.append(("text", (line, block, height)))
                height += h
        elif isinstance(block, Rule):
            parts.append(("rule", height))
            height += LINE_H
        elif isinstance(block, QR):
            matrix = qr_matrix(block.data)
            scale = max(1, min(block.size, (width - 2 * MARGIN) // (len(matrix) + 8)))
            parts.append(("qr", (matrix, scale, height)))
            height += (len(matrix) + 8) * scale
        elif isinstance(block, Feed):
            height += LINE_H * block.lines
    height += MARGIN * 2
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    for kind, what in parts:
        if kind == "text":
            line, block, y = what  # type: ignore[misc]
            scale = 2 if block.double else 1
            font = _font(22 * scale)
            try:
                w = int(draw.textlength(line, font=font))  # the font is proportional
            except (AttributeError, ValueError):
                w = text_width(line, style.encoding) * CELL_W * scale
            x = MARGIN
            if block.align == "center":
                x = (width - w) // 2
            elif block.align == "right":
                x = width - MARGIN - w
            draw.text(
                (x, y + 2),
                line,
                fill=0,
                font=font,
                stroke_width=1 if block.bold else 0,
                stroke_fill=0,
            )
        elif kind == "rule":
            y = what  # type: ignore[assignment]
            draw.line((MARGIN, y + LINE_H // 2, width - MARGIN, y + LINE_H // 2), fill=0, width=2)
        elif kind == "qr":
            matrix, scale, y = what  # type: ignore[misc]
            side = (len(matrix) + 8) * scale
            x0 = (width - side) // 2 + 4 * scale
            y0 = y + 4 * scale
            for r, row in enumerate(matrix):
                for c, dot in enumerate(row):
                    if dot:
                        draw.rectangle(
                            (
                                x0 + c * scale,
                                y0 + r * scale,
                                x0 + (c + 1) * scale - 1,
                                y0 + (r + 1) * scale - 1,
                            ),
                            fill=0,
                        )
    return img
