"""A validated roster's appointments in an SQLite file beside the documents, off the heap.

A 20,000-entry roster kept as Python objects is ~12 MB of rows and index, and ~10 MB more that
the allocator keeps after decoding it (the strings that live on are scattered over the arenas
the decoded JSON filled): ~23 MB of a Pi-class kiosk's memory for the day, twice with
tomorrow's roster kept aside (issue 16). Written here once validated, it is a file of ~10 MB
that the kiosk reads a few pages of per card (an index lookup: tens of microseconds).

The file is named by the SHA-256 of the payload it was built from, and written whole before it
gets its name: a kiosk restarted with the same roster opens it without decoding nor validating
the payload again. A file that cannot be opened, or whose count or format is not the one
recorded, is not used (the payload is validated again and the file written again).

    index = RosterIndex.build(path, head, chunks)   # chunks: lists of validated rows
    head, index = RosterIndex.open(path)            # None when absent or unusable
    index.with_token(token); index.with_id("A20261123-0042"); index.with_digits("202611230042")
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, overload

from terminal.privacy import is_masked
from terminal.storage import sync_dir

log = logging.getLogger("careterm.documents")

FORMAT = "1"
"""The file's layout and the rules its rows were validated by: a file of another format is
built again from its payload (change it with either)."""

SUFFIX = ".roster.sqlite"
CACHE_KIB = 256
"""SQLite's page cache per open roster: a lookup reads a handful of pages."""
BATCH = 512
"""Rows fetched at a time when the whole roster is walked."""
FILE_MODE = 0o640
"""Patients' tokens, names and appointments: never readable by other users of the device,
whatever the umask the kiosk was started with."""


class AppointmentRow(NamedTuple):
    """`payloads.Appointment`'s fields, validated, in a tuple (`lookup` a tuple too)."""

    id: str
    token: str | None
    lookup: tuple[str, ...]
    name: str
    department_id: str
    department: str
    doctor: str
    room: str
    slot_start: str
    slot_end: str
    queue_no: str


_NOT_DIGIT = re.compile(r"[^0-9]")


def id_digits(text: str) -> str:
    """The ASCII digits of `text`, in order (A20261123-0042: 202611230042)."""
    if text.isascii():  # (str.isdigit is 0-9 alone in ASCII)
        return "".join(filter(str.isdigit, text))
    return _NOT_DIGIT.sub("", text)


def id_key(appointment_id: str) -> str:
    """What an appointment id is looked up by: the id in upper case."""
    return appointment_id.upper()


_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE appointment(
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL, token TEXT, lookup TEXT NOT NULL, name TEXT NOT NULL,
    department_id TEXT NOT NULL, department TEXT NOT NULL, doctor TEXT NOT NULL,
    room TEXT NOT NULL, slot_start TEXT NOT NULL, slot_end TEXT NOT NULL,
    queue_no TEXT NOT NULL, id_key TEXT NOT NULL, digits TEXT NOT NULL
);
CREATE TABLE token(token TEXT NOT NULL, n INTEGER NOT NULL);
"""
_INDEXES = """
CREATE INDEX token_at ON token(token, n);
CREATE INDEX id_at ON appointment(id_key, n);
CREATE INDEX digits_at ON appointment(digits, n);
"""
_COLUMNS = (
    "id, token, lookup, name, department_id, department, doctor, room, slot_start, slot_end, "
    "queue_no"
)


def _row(r: tuple[Any, ...]) -> AppointmentRow:
    lookup = tuple(json.loads(r[2])) if r[2] != "[]" else ()
    return AppointmentRow(r[0], r[1], lookup, *r[3:])


class RosterIndex(Sequence[AppointmentRow]):
    """The appointments of one roster, read from its file (any thread, one query at a time).

    A sequence in the document's order, and lookups with the in-memory index's rules: every
    appointment with a card or lookup token in the document's order, the last with an id
    (upper case), the first with an id's digits."""

    def __init__(self, path: Path, conn: sqlite3.Connection, count: int) -> None:
        self.path = path
        self._conn = conn
        self._count = count
        self._lock = threading.Lock()
        # Closed with the last reference to this index: a connection is part of a reference
        # cycle of its own (its statement cache), left to a full collection, and a removed
        # file held open keeps its space on the disk.
        weakref.finalize(self, conn.close)

    # -- building and opening ----------------------------------------------------------------

    @classmethod
    def build(
        cls, path: Path, head: dict[str, Any], chunks: Iterable[Sequence[AppointmentRow]]
    ) -> RosterIndex:
        """Write the rows to `path` (a temporary name first, renamed once complete and on disk)
        and open it. `chunks` may raise (a fault found further on): nothing is left behind.
        OSError or sqlite3.Error when the file cannot be written (disk full, read-only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
            conn.execute("BEGIN")
            n = 0
            for chunk in chunks:
                rows, tokens = [], []
                for a in chunk:
                    n += 1
                    rows.append(
                        (
                            n,
                            a.id,
                            a.token,
                            json.dumps(list(a.lookup)),
                            a.name,
                            a.department_id,
                            a.department,
                            a.doctor,
                            a.room,
                            a.slot_start,
                            a.slot_end,
                            a.queue_no,
                            id_key(a.id),
                            id_digits(a.id),
                        )
                    )
                    if a.token:
                        tokens.append((a.token, n))
                    tokens.extend((t, n) for t in a.lookup if t)
                conn.executemany(
                    f"INSERT INTO appointment(n, {_COLUMNS}, id_key, digits) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                conn.executemany("INSERT INTO token VALUES (?, ?)", tokens)
            for statement in _INDEXES.strip().splitlines():
                conn.execute(statement)  # (executescript would commit first)
            meta = {"format": FORMAT, "count": str(n), "head": json.dumps(head)}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
            conn.close()
            os.chmod(tmp, FILE_MODE)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        sync_dir(path.parent)
        opened = cls.open(path)
        if opened is None:
            raise OSError(f"{path}: written but cannot be read back")
        return opened[1]

    @classmethod
    def open(cls, path: Path) -> tuple[dict[str, Any], RosterIndex] | None:
        """The head of the roster (`v`, `date`, `generated`, the fields it gave) and its rows;
        None when the file is absent, of another format, or not whole."""
        if not path.is_file():
            return None
        try:
            # immutable: the file never changes once named, and may be unlinked while in use
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro&immutable=1",
                uri=True,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            log.warning("roster index %s cannot be opened (%s): built again", path, e)
            return None
        try:
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            count = int(meta.get("count", "-1"))
            rows = conn.execute("SELECT max(n), count(*) FROM appointment").fetchone()
            if meta.get("format") != FORMAT or tuple(rows) != (count, count) or count < 1:
                raise ValueError(f"format {meta.get('format')}, {rows[1]} of {count} rows")
            head = json.loads(meta["head"])
        except (sqlite3.Error, ValueError, KeyError) as e:
            conn.close()
            log.warning("roster index %s is not usable (%s): built again", path, e)
            return None
        return head, cls(path, conn, count)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- the sequence --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        """The same rows: a file of the same payload (its name is the payload's digest), or a
        list or tuple of them."""
        if isinstance(other, RosterIndex):
            return other.path.name == self.path.name or list(other) == list(self)
        if isinstance(other, list | tuple):
            return len(other) == self._count and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @overload
    def __getitem__(self, i: int) -> AppointmentRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[AppointmentRow]: ...
    def __getitem__(self, i: int | slice) -> AppointmentRow | list[AppointmentRow]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError("roster index out of range")
        found = self._query(f"SELECT {_COLUMNS} FROM appointment WHERE n = ?", (i + 1,))
        return found[0]

    def __iter__(self) -> Iterator[AppointmentRow]:
        for start in range(0, self._count, BATCH):
            yield from self._query(
                f"SELECT {_COLUMNS} FROM appointment WHERE n > ? AND n <= ? ORDER BY n",
                (start, start + BATCH),
            )

    # -- lookups -------------------------------------------------------------------------------

    def with_token(self, token: str) -> list[AppointmentRow]:
        """Every appointment with this card or lookup token, in the document's order (once per
        time it names the token)."""
        return self._query(
            f"SELECT {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))} "
            "FROM token t JOIN appointment a ON a.n = t.n WHERE t.token = ? ORDER BY t.n",
            (token,),
        )

    def with_id(self, key: str) -> AppointmentRow | None:
        """The last appointment whose `id_key` is `key`."""
        found = self._query(
            f"SELECT {_COLUMNS} FROM appointment WHERE id_key = ? ORDER BY n DESC LIMIT 1", (key,)
        )
        return found[0] if found else None

    def with_digits(self, digits: str) -> AppointmentRow | None:
        """The first appointment whose id has exactly these digits."""
        found = self._query(
            f"SELECT {_COLUMNS} FROM appointment WHERE digits = ? ORDER BY n LIMIT 1", (digits,)
        )
        return found[0] if found else None

    def has_unmasked_name(self) -> bool:
        """Whether a name is not masked (`terminal.privacy.is_masked`): a HIS publishing SPEC 6.5
        itself may send full names (terminal.documents then indexes a masked copy instead)."""
        with self._lock:
            names = self._conn.execute("SELECT name FROM appointment WHERE trim(name) != ''")
            return any(not is_masked(name) for (name,) in names)

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[AppointmentRow]:
        with self._lock:
            return [_row(r) for r in self._conn.execute(sql, args)]


def index_name(digest: str) -> str:
    """The file name of the index of the payload with this SHA-256 (hex)."""
    return f"{digest}{SUFFIX}"


def prune(folder: Path, keep: Iterable[Path], *, temporary_only: bool = False) -> None:
    """Remove the index files (and temporary ones) in `folder` but those in `keep`; with
    `temporary_only`, only what a killed process left half written. A file in use by an older
    roster object stays readable through its open handle."""
    kept = {p.name for p in keep}
    mine = f".{os.getpid()}.tmp"  # one being written by this process
    kinds = (".tmp",) if temporary_only else (SUFFIX, ".tmp")
    try:
        names = [
            p for p in folder.iterdir() if p.name.endswith(kinds) and not p.name.endswith(mine)
        ]
    except FileNotFoundError:
        return
    for p in names:
        if p.name not in kept:
            try:
                p.unlink()
            except OSError as e:
                log.warning("roster index %s could not be removed: %s", p, e.strerror)
