"""Registers a CJK font under one name: Kivy's default font has no Chinese glyphs (boxes)."""

from __future__ import annotations

import logging

from kivy.core.text import LabelBase

from terminal.fonts import MISSING_HINT, find_cjk_font

log = logging.getLogger("careterm.pad.ui")

FONT = "CaretermCJK"


def register_fonts() -> str | None:
    path = find_cjk_font()
    if path is None:
        log.error(MISSING_HINT)
        LabelBase.register(FONT, "Roboto-Regular.ttf", fn_bold="Roboto-Bold.ttf")
        return None
    LabelBase.register(FONT, path)
    return path


register_fonts()
