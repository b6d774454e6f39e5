"""What the outbox needs from storage: SQLite errors a technician understands, the fault seam
tests use to make a disk fail on cue, the clocks, and durable small files."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from terminal.clock import clock_synced

log = logging.getLogger("careterm.outbox")

ErrorKind = Literal["full", "readonly", "io", "damaged", "other"]
_KINDS: tuple[tuple[str, ErrorKind, str], ...] = (
    ("SQLITE_FULL", "full", "disk full"),
    ("SQLITE_READONLY", "readonly", "read-only"),
    ("SQLITE_IOERR", "io", "I/O error"),
    ("SQLITE_CORRUPT", "damaged", "database damaged"),
    ("SQLITE_NOTADB", "damaged", "not a database"),
)


class StorageError(Exception):
    """The event could not be made durable (disk full, read-only, I/O error)."""

    def __init__(self, message: str, kind: ErrorKind = "other") -> None:
        super().__init__(message)
        self.kind = kind


def classify(e: sqlite3.Error) -> tuple[ErrorKind, str]:
    """The kind of a SQLite error and a short text a technician understands."""
    name = getattr(e, "sqlite_errorname", "") or ""
    for prefix, kind, words in _KINDS:
        if name.startswith(prefix):
            return kind, f"{words} ({e})"
    text = str(e)
    if "disk is full" in text:
        return "full", f"disk full ({text})"
    if "readonly" in text:
        return "readonly", f"read-only ({text})"
    return "other", text


# -- seams: faults and clocks ----------------------------------------------------------------

FaultOp = Literal["store", "mark_sent", "site_ack", "session", "expire"]
_FAULT_ERRORS: dict[ErrorKind, tuple[str, int, str]] = {
    "full": ("database or disk is full", 13, "SQLITE_FULL"),
    "readonly": ("attempt to write a readonly database", 8, "SQLITE_READONLY"),
    "io": ("disk I/O error", 10, "SQLITE_IOERR"),
    "damaged": ("database disk image is malformed", 11, "SQLITE_CORRUPT"),
    "other": ("injected failure", 1, "SQLITE_ERROR"),
}


@dataclass
class _Plan:
    kind: ErrorKind
    left: int | None


class Faults:
    """Test seam: make chosen outbox writes fail the way SQLite fails on a bad disk.

    The failure is raised inside the write's transaction, just before COMMIT, after SQLite
    has rolled the transaction back itself (as it does for a full disk), with SQLite's own
    message and error code. `times=None` fails every write of that operation until `clear()`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self.raised = 0

    def fail(self, op: FaultOp, kind: ErrorKind = "full", times: int | None = None) -> None:
        with self._lock:
            self._plans[op] = _Plan(kind, times)

    def clear(self, op: FaultOp | None = None) -> None:
        with self._lock:
            if op is None:
                self._plans.clear()
            else:
                self._plans.pop(op, None)

    def check(self, op: FaultOp, db: sqlite3.Connection) -> None:
        with self._lock:
            plan = self._plans.get(op)
            if plan is None:
                return
            if plan.left is not None:
                plan.left -= 1
                if plan.left <= 0:
                    del self._plans[op]
            self.raised += 1
        if db.in_transaction:
            db.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_FULL
        text, code, name = _FAULT_ERRORS[plan.kind]
        err = sqlite3.OperationalError(text)
        err.sqlite_errorcode = code
        err.sqlite_errorname = name
        raise err


class Clock(Protocol):
    """Where the outbox reads time: wall clock, monotonic clock, and whether NTP synced."""

    def wall(self) -> float: ...
    def monotonic(self) -> float: ...
    def synced(self) -> bool: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        return clock_synced()


def classify_any(e: BaseException) -> str:
    return classify(e)[1] if isinstance(e, sqlite3.Error) else str(e)


def rollback_open(db: sqlite3.Connection) -> None:
    """Roll back only a transaction that is still open: SQLite may already have rolled it back
    (a full disk), and a second ROLLBACK would hide the real error behind "no transaction"."""
    if not db.in_transaction:
        return
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error as e:
        log.warning("outbox: rollback failed: %s", classify(e)[1])


def sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` atomically; on disk when this returns (a power cut leaves old or new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)
