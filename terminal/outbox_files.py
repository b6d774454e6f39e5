"""The outbox's companions in `data_dir`: the marker that tells a lost outbox from a first
boot (`outbox.identity`), the reserve (`outbox.reserve`: real blocks given back to the file
system when the disk is full), and moving an unusable outbox aside so that it is kept."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.envelope import dumps
from terminal.storage import sync_dir, write_durably

log = logging.getLogger("careterm.outbox")


def move_aside(path: Path) -> list[Path]:
    """Rename `path` and its `-wal`/`-shm` to `<stem>-damaged-<time><suffix>` beside it (a
    kept file opens with its WAL); return the new names."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    base = path.with_name(f"{path.stem}-damaged-{stamp}{path.suffix}")
    n = 1
    while base.exists():
        n += 1
        base = path.with_name(f"{path.stem}-damaged-{stamp}-{n}{path.suffix}")
    kept: list[Path] = []
    for side in ("", "-wal", "-shm"):
        src = Path(f"{path}{side}")
        if src.exists():
            dst = Path(f"{base}{side}")
            os.replace(src, dst)
            kept.append(dst)
    sync_dir(path.parent)
    return kept


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker's content; None when there is none (a first boot, or a wiped folder)."""
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("outbox: marker %s unreadable (%s)", path, e)
        return {"epoch": None}
    return obj if isinstance(obj, dict) else {"epoch": None}


def write_marker(path: Path, device: str, epoch: str, outbox: str) -> None:
    body = dumps(
        {
            "device": device,
            "epoch": epoch,
            "outbox": outbox,
            "written": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
    )
    try:
        write_durably(path, body)
    except OSError as e:
        log.error("outbox: cannot write the marker %s: %s", path, e)


def hold_reserve(path: Path, size: int, headroom: int) -> bool:
    """True when `path` holds `size` bytes of real blocks (made now if `size + headroom` are
    free); False when there is no room for it (or `size` is 0)."""
    if size <= 0:
        return False
    try:
        if path.stat().st_size >= size:
            return True
    except OSError:
        pass
    try:
        st = os.statvfs(path.parent)
        if st.f_bavail * st.f_frsize < size + headroom:
            return False
        with open(path, "wb") as f:
            f.write(b"\0" * size)  # zeros written, not a sparse file: the blocks are taken
            f.flush()
            os.fsync(f.fileno())
        return True
    except OSError as e:
        log.warning("outbox: cannot make the reserve %s: %s", path, e)
        release_reserve(path)
        return False


def release_reserve(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
