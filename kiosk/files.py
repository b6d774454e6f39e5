"""Small durable files in data_dir: written to a temporary name, synced, then renamed into place."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes_durably(path: Path, data: bytes) -> None:
    """Replace `path` atomically; the content is on disk when this returns (power cut safe)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself is only durable once the folder entry is synced.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durably(path: Path, obj: Any) -> None:
    write_bytes_durably(path, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when it is missing or unreadable (a torn file is not fatal)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
