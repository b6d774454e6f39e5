"""The outbox's companions in `data_dir`: the marker that tells a lost outbox from a first
boot (`outbox.identity`), the reserve (`outbox.reserve`: real blocks given back to the file
system when the disk is full), and moving an unusable outbox aside so that it is kept."""

from __future__ import annotations

import json
import logging
import os
import struct
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


WAL_INDEX_VERSION = 3007000
"""`iVersion` of SQLite's WAL index header (the `-shm` file), in native byte order."""


def wal_lost(path: Path) -> str | None:
    """Why the outbox at `path` lost committed transactions with its WAL, or None.

    Read before SQLite opens the file (the first connection resets the `-shm`). After an
    unclean stop (SIGKILL, power cut) the WAL holds commits not yet copied into the database,
    and the `-shm` index says how many frames (`mxFrame`) and how many are copied
    (`nBackfill`). A WAL removed or cut short after that (a technician cleaning up, a file
    system repair) leaves a valid database that ends earlier: its `last_seq` is behind numbers
    already handed out. SQLite writes and syncs the frames before the index names them, so an
    index that names more frames than the WAL holds means they were lost."""
    try:
        head = Path(f"{path}-shm").read_bytes()[:136]
    except OSError:
        return None
    if len(head) < 136 or head[:48] != head[48:96]:
        return None  # no index, or one caught mid-update: nothing to go by
    version, _, _, is_init, _, page, frames = struct.unpack("=IIIBBHI", head[:20])
    (copied,) = struct.unpack("=I", head[96:100])
    if version != WAL_INDEX_VERSION or not is_init or frames <= copied:
        return None
    page_size = 65536 if page == 1 else page
    need = 32 + frames * (24 + page_size)
    wal = Path(f"{path}-wal")
    try:
        size = wal.stat().st_size
    except OSError:
        size = -1
    if size >= need:
        return None
    state = "missing" if size < 0 else f"cut short ({size} of at least {need} bytes)"
    return (
        f"the outbox's WAL {wal} was {state} after an unclean stop: {frames - copied} pages of "
        "the last stored events were lost with it, and their seq numbers may have been sent"
    )


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
