"""Registers a CJK font under one name: Kivy's default font has no Chinese glyphs (boxes)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kivy.core.text import LabelBase

log = logging.getLogger("careterm.pad.ui")

FONT = "CaretermCJK"
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def find_cjk_font() -> str | None:
    """`$CARETERM_FONT` (a .ttf/.ttc path) or the first installed CJK font."""
    explicit = os.environ.get("CARETERM_FONT")
    for path in ((explicit,) if explicit else ()) + CANDIDATES:
        if path and Path(path).is_file():
            return path
    return None


def register_fonts() -> str | None:
    path = find_cjk_font()
    if path is None:
        log.error(
            "no CJK font found (install fonts-wqy-microhei or fonts-noto-cjk, or set "
            "CARETERM_FONT): Chinese text will show as boxes"
        )
        LabelBase.register(FONT, "Roboto-Regular.ttf", fn_bold="Roboto-Bold.ttf")
        return None
    LabelBase.register(FONT, path)
    return path


register_fonts()
