"""The kiosk's own small JSON files in data_dir (check-ins of the day, the feedback counter),
written durably by terminal.storage (temporary name, fsync, rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from terminal.storage import write_durably


def write_json_durably(path: Path, obj: Any) -> None:
    write_durably(path, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when it is missing or unreadable (a torn file is not fatal)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
