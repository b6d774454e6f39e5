"""Where the CJK font is: one lookup for the screens and the ticket previews.

Kivy's and Pillow's default fonts have no Chinese glyphs (boxes). Debian and Raspberry Pi OS
ship `fonts-wqy-microhei` and `fonts-noto-cjk`; `$CARETERM_FONT` names another file.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
MISSING_HINT = (
    "no CJK font found (install fonts-wqy-microhei or fonts-noto-cjk, or set CARETERM_FONT "
    "to a .ttf/.ttc file): Chinese text shows as boxes"
)


@functools.cache
def find_cjk_font() -> str | None:
    """`$CARETERM_FONT`, else the first known CJK font file, else any CJK font found."""
    explicit = os.environ.get("CARETERM_FONT")
    for path in ((explicit,) if explicit else ()) + CANDIDATES:
        if path and Path(path).is_file():
            return path
    fonts = Path("/usr/share/fonts")
    for pattern in ("*CJK*", "wqy*"):
        for p in sorted(fonts.rglob(pattern)) if fonts.is_dir() else ():
            if p.suffix in (".ttc", ".ttf", ".otf"):
                return str(p)
    return None
