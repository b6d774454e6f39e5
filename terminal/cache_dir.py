"""Where careterm keeps what it can always make again (python-escpos's pickled printer database,
Kivy's cut style): a folder of the user's cache that lasts across starts."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path | None:
    """`$CACHE_DIRECTORY` (systemd's CacheDirectory=), `$XDG_CACHE_HOME`, ~/.cache: careterm/."""
    base = os.environ.get("CACHE_DIRECTORY") or os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "careterm"
