"""Durable outbox: every event is committed and synced to disk, with its `seq`, before anyone is told.

One SQLite file in WAL mode with `synchronous=FULL`. Each outbox has an *epoch* (SPEC 9.2): a
random id made when the file is created, carried in every envelope; `seq` starts at 1 and is
contiguous within the epoch. The counter lives in the same database and is advanced in the
transaction that stores the event, so a crash can neither lose an event that was reported
stored nor reuse a `seq`. Rows move through three states: waiting (not yet PUBACKed), sent
(PUBACKed, kept until the site's `ack` of this epoch covers it, or until the device itself
has kept it `retain_days` on a synchronised clock) and gone.

A missing, empty, damaged or foreign outbox file is never silently replaced: it is moved
aside and kept, a new epoch starts, and the new epoch's first event is a critical `storage`
alert saying what happened (docs/foundation.md, "Recovery"). A small marker file beside it
(`outbox.identity`) tells a lost outbox from a first boot.

When the disk refuses a write, the WAL is checkpointed and truncated and a small reserve file
is given back to the file system, then the write is tried once more; the error reported is
SQLite's own (disk full, read-only, I/O error). `Faults` is the seam tests use to make those
failures happen exactly when they want.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminal.envelope import alert_data, build_envelope, dumps, uuid7
from terminal.outbox_files import (
    hold_reserve,
    move_aside,
    read_marker,
    release_reserve,
    wal_lost,
    write_marker,
)
from terminal.outbox_schema import (
    META_KEYS,
    SCHEMA,
    SCHEMA_VERSION,
    check_existing,
    migrate_v1,
    new_epoch,
    put_info,
    read_info,
    schema_version,
)
from terminal.storage import (
    Clock,
    ErrorKind,
    FaultOp,
    Faults,
    StorageError,
    SystemClock,
    classify,
    classify_any,
    rollback_open,
    sync_dir,
    write_durably,
)
from terminal.topics import Topics

__all__ = [
    "AckResult",
    "Clock",
    "Faults",
    "Outbox",
    "OutboxStats",
    "StorageError",
    "StoredEvent",
    "outbox_path",
]

log = logging.getLogger("careterm.outbox")

DEFAULT_RESERVE_BYTES = 256 * 1024
"""Given back to the file system when the disk is full, so that a patient's rating still fits."""
RESERVE_RETRY_S = 60.0
WAL_LIMIT_BYTES = 1024 * 1024
BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for another connection's lock (SQLite's busy timeout)."""
"""The WAL is cut back to this size after each checkpoint (`journal_size_limit`)."""
KEPT_SAVE_EVERY_S = 600.0

# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    id: str
    type: str
    topic: str
    payload: bytes
    created: float
    sent_at: float | None


@dataclass(frozen=True)
class OutboxStats:
    last_seq: int
    waiting: int
    sent_unacked: int
    oldest_waiting_s: float | None
    oldest_unacked_s: float | None
    site_acked_seq: int
    size_bytes: int
    epoch: str = ""
    kept_s: float = 0.0
    reserve_held: bool = True


@dataclass(frozen=True)
class AckResult:
    """What an `ack` did: `applied` when it was for this epoch; `dropped` events forgotten."""

    applied: bool
    dropped: int
    note: str = ""


@dataclass
class _Recovery:
    problem: str
    kept: list[Path] = field(default_factory=list)
    previous_epoch: str | None = None


_COLS = "seq, id, type, topic, payload, created, sent_at"


class Outbox:
    """Thread-safe: every method may be called from any thread (one connection, one lock)."""

    def __init__(
        self,
        path: str | Path,
        *,
        device: str,
        site: str,
        topic_root: str = "careterm",
        max_pages: int | None = None,
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
        faults: Faults | None = None,
        clock: Clock | None = None,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.device = device
        self.site = site
        self.topic_root = topic_root
        self.topics = Topics(topic_root, site, device)
        self.identity_path = self.path.with_name(self.path.stem + ".identity")
        self.reserve_path = self.path.with_name(self.path.stem + ".reserve")
        self.wal_lost_path = self.path.with_name(self.path.stem + ".wal-lost")
        """Says the WAL was lost until the epoch it made unsafe has ended (survives a crash)."""
        self.faults = faults or Faults()
        self.clock: Clock = clock or SystemClock()
        self._max_pages = max_pages
        self._reserve_bytes = max(0, reserve_bytes)
        self._reserve_held = False
        self._reserve_news = False
        self._reserve_retry_at = 0.0
        self._lock = threading.Lock()
        self.scrub_due = False
        """Events were deleted since the last `scrub`."""
        self.epoch = ""
        self.recovered: _Recovery | None = None
        """Why this start began a new epoch although it was not a first boot (None: it did not)."""
        self._stale_file: str | None = None
        self._kept = 0.0
        self._kept_saved_at = 0.0
        self._last_mono = self.clock.monotonic()
        self._last_synced = self.clock.synced()
        if readonly:
            self._db = self._open_readonly()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open()
        self._end_unsafe_epoch()
        self._hold_reserve()

    # -- opening ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            str(self.path),
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_LIMIT_BYTES // 4096}")
        # A deleted event (acked, expired) is overwritten with zeros, not left in a free page
        # of the file: a feedback's callback phone leaves the disk with the event (`scrub`
        # then clears the WAL's older copies of those pages).
        db.execute("PRAGMA secure_delete=ON")
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            self.epoch = read_info(db).get("epoch", "")
            (self._kept,) = db.execute("SELECT value FROM meta WHERE key='kept_s'").fetchone()
        except (sqlite3.Error, TypeError) as e:
            raise StorageError(f"{self.path}: cannot read the outbox: {classify_any(e)}") from e
        return db

    def _open(self) -> sqlite3.Connection:
        lost = wal_lost(self.path)
        if lost is not None:
            # Noted durably before SQLite resets the evidence: a crash before the new epoch is
            # committed must not let the next start hand out the lost seq numbers again.
            log.error("outbox: %s", lost)
            write_durably(self.wal_lost_path, lost.encode())
        identity = self._read_identity()
        problem: str | None = None
        db: sqlite3.Connection | None = None
        if self.path.exists():
            if self.path.stat().st_size == 0 and not _wal_of(self.path).exists():
                problem = "the outbox file is empty"
            else:
                try:
                    db = self._connect()
                    if identity is None and not _has_tables(db):
                        # A first start killed before it made its tables: nothing was stored.
                        db.close()
                        db = None
                        _remove_db_files(self.path)
                    else:
                        problem = check_existing(db, self.device)
                except sqlite3.Error as e:
                    problem = f"the outbox file is unreadable: {classify(e)[1]}"
                if problem is not None and db is not None:
                    db.close()
                    db = None
        elif identity is not None:
            problem = (
                f"the outbox file is missing (this data folder had epoch {identity.get('epoch')})"
            )
        elif _wal_of(self.path).exists():
            problem = "the outbox file is missing but its WAL is still there"
        if db is not None:
            return self._resume(db, identity)
        recovery = None
        if problem is not None:
            prev = identity.get("epoch") if identity else None
            recovery = _Recovery(
                problem, self._move_aside(), prev if isinstance(prev, str) else None
            )
            kept = ", ".join(str(p) for p in recovery.kept) or "nothing left to keep"
            log.error(
                "outbox: %s; kept: %s; a new epoch starts (a critical storage alert follows)",
                problem,
                kept,
            )
        try:
            db = self._connect()
            self._create(db, recovery)
        except sqlite3.Error as e:
            raise StorageError(
                f"{self.path}: cannot create the outbox: {classify(e)[1]}", classify(e)[0]
            ) from e
        return db

    def _resume(
        self, db: sqlite3.Connection, identity: dict[str, Any] | None
    ) -> sqlite3.Connection:
        try:
            if schema_version(db) < 2:
                migrate_v1(db, self.device, self.site)
            info = read_info(db)
            self.epoch = info["epoch"]
            for key in META_KEYS:
                db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, 0)", (key,))
            (self._kept,) = db.execute("SELECT value FROM meta WHERE key='kept_s'").fetchone()
            self._kept = float(self._kept)
            self._apply_limit(db)
        except sqlite3.Error as e:
            db.close()
            raise StorageError(
                f"{self.path}: cannot open the outbox: {classify(e)[1]}", classify(e)[0]
            ) from e
        marked = identity.get("epoch") if identity is not None else None
        if (
            isinstance(marked, str)
            and marked != self.epoch
            and info.get("foreign_alerted") != marked
        ):
            # Not a marker one step behind (a crash between a new epoch's commit and the marker,
            # which then names the epoch this file ended): the file never had the marker's epoch.
            # It is an older copy (only the file restored) or another folder's: the site may
            # already hold its next seq numbers for other events. A new epoch starts in it.
            self._stale_file = (
                f"the outbox has epoch {self.epoch} but its marker {self.identity_path} names "
                f"epoch {marked}, which this file never had (restored from an older copy?)"
            )
        elif identity is None or marked != self.epoch:
            if identity is not None:
                log.warning(
                    "outbox: %s has epoch %s but the marker said %s; using the file",
                    self.path,
                    self.epoch,
                    marked,
                )
            self._write_identity()
        return db

    def _create(self, db: sqlite3.Connection, recovery: _Recovery | None) -> None:
        """A new outbox and epoch; after a recovery its first event, in the same transaction
        as the tables, is the critical `storage` alert saying what happened (a crash cannot
        lose it: a file killed before this commit has no tables and is made again)."""
        epoch = new_epoch()
        self._db = db
        self.epoch = epoch
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for key in META_KEYS:
                db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, 0)", (key,))
            db.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
            note = recovery.problem if recovery else "first start"
            put_info(db, self.device, self.site, epoch, note=note)
            if recovery is not None:
                if recovery.previous_epoch:
                    db.execute(
                        "INSERT OR REPLACE INTO info(key, value) VALUES ('foreign_alerted', ?)",
                        (recovery.previous_epoch,),
                    )
                self._insert(db, "alert", self._recovery_alert(recovery), "storage", None)
            db.execute("COMMIT")
        except BaseException:
            rollback_open(db)
            raise
        self._apply_limit(db)
        self._write_identity()
        self.recovered = recovery

    def _end_unsafe_epoch(self) -> None:
        """After a lost WAL (noted by `_open`) or in a file older than its marker, `last_seq`
        may be behind numbers already handed out: unless a new outbox was made anyway, a new
        epoch starts in this file (events still stored carried over), so no seq is given to two
        events. A crash before it is committed leaves the note and the marker as they were."""
        lost: str | None = None
        try:
            lost = self.wal_lost_path.read_text(errors="replace").strip() or "WAL lost"
        except FileNotFoundError:
            pass
        except OSError as e:
            lost = f"the outbox's WAL was lost after an unclean stop ({e})"
        why = "; ".join(w for w in (lost, self._stale_file) if w)
        if why and self.recovered is None:
            try:
                self._rotate(why)
            except StorageError:
                self._db.close()
                raise
        if lost is not None:
            try:
                self.wal_lost_path.unlink()
                sync_dir(self.path.parent)
            except OSError as e:
                log.warning("outbox: cannot remove %s: %s", self.wal_lost_path, e)

    def _recovery_alert(self, recovery: _Recovery) -> dict[str, Any]:
        kept = ", ".join(str(p) for p in recovery.kept)
        tail = (
            f"; the old file is kept as {kept}: events in it the site does not have can be "
            "recovered from it"
            if kept
            else "; nothing of the old outbox was left to keep"
        )
        return alert_data(
            "storage",
            "critical",
            f"{recovery.problem}; a new outbox (epoch {self.epoch}) started{tail}",
            epoch=self.epoch,
            previous_epoch=recovery.previous_epoch,
            kept=[str(p) for p in recovery.kept],
        )

    def _move_aside(self) -> list[Path]:
        return move_aside(self.path)

    def _read_identity(self) -> dict[str, Any] | None:
        return read_marker(self.identity_path)

    def _write_identity(self) -> None:
        write_marker(self.identity_path, self.device, self.epoch, self.path.name)

    # -- disk space: WAL, reserve, page limit -------------------------------------------------

    def _limit_pages(self) -> int | None:
        if self._max_pages is None:
            return None
        if not self._reserve_held:
            return self._max_pages
        reserve_pages = min(self._reserve_bytes // 4096, self._max_pages // 4)
        return max(1, self._max_pages - reserve_pages)

    def _apply_limit(self, db: sqlite3.Connection) -> None:
        limit = self._limit_pages()
        if limit is not None:
            db.execute(f"PRAGMA max_page_count={int(limit)}")

    def _hold_reserve(self) -> None:
        """Make sure the reserve is on disk (when there is room for it)."""
        if hold_reserve(self.reserve_path, self._reserve_bytes, WAL_LIMIT_BYTES):
            self._reserve_held = True
            try:
                self._apply_limit(self._db)
            except sqlite3.Error:
                pass

    def _release_reserve(self) -> bool:
        if not self._reserve_held:
            return False
        self._reserve_held = False
        release_reserve(self.reserve_path)
        try:
            self._apply_limit(self._db)
        except sqlite3.Error:
            pass
        self._reserve_retry_at = self.clock.monotonic() + RESERVE_RETRY_S
        log.warning(
            "outbox: the disk is full; the %d KiB reserve is given back so events still fit",
            self._reserve_bytes // 1024,
        )
        return True

    def _make_room(self, kind: ErrorKind) -> tuple[bool, bool]:
        """After a failed write: checkpoint and truncate the WAL; on a full disk, give back the
        reserve. Returns (a second try is worthwhile, the reserve was given back now)."""
        rollback_open(self._db)
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            log.warning("outbox: WAL checkpoint failed: %s", classify(e)[1])
        if kind == "full":
            return True, self._release_reserve()
        return kind == "io", False

    # -- writing ---------------------------------------------------------------------------

    def store(
        self, etype: str, data: dict[str, Any], *, alert_kind: str = "", ts: float | None = None
    ) -> StoredEvent:
        """Assign the next `seq`, store the event and sync it; return only once it is durable.

        Raises StorageError (never reports an event stored that is not)."""
        with self._lock:
            try:
                ev = self._store_locked(etype, data, alert_kind, ts)
            except sqlite3.Error as e:
                kind, words = classify(e)
                retry, released = self._make_room(kind)
                self._reserve_news |= released
                if not retry:
                    raise StorageError(f"{self.path}: event not stored: {words}", kind) from e
                try:
                    ev = self._store_locked(etype, data, alert_kind, ts)
                except sqlite3.Error as e2:
                    rollback_open(self._db)
                    kind, words = classify(e2)
                    raise StorageError(f"{self.path}: event not stored: {words}", kind) from e2
            if self._reserve_news:
                self._reserve_news = False
                self._note_reserve_used()
            if not self._reserve_held and self.clock.monotonic() >= self._reserve_retry_at:
                self._reserve_retry_at = self.clock.monotonic() + RESERVE_RETRY_S
                self._hold_reserve()
        return ev

    def _note_reserve_used(self) -> None:
        try:
            self._store_locked(
                "alert",
                alert_data(
                    "storage",
                    "critical",
                    "the disk is full: the outbox is using its reserve; free space in the "
                    "data folder now",
                    reserve_bytes=self._reserve_bytes,
                ),
                "storage",
                None,
            )
        except sqlite3.Error:
            rollback_open(self._db)

    def _store_locked(
        self, etype: str, data: dict[str, Any], alert_kind: str, ts: float | None
    ) -> StoredEvent:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            ev = self._insert(db, etype, data, alert_kind, ts)
            self.faults.check("store", db)
            db.execute("COMMIT")
        except BaseException:
            rollback_open(db)
            raise
        return ev

    def _insert(
        self,
        db: sqlite3.Connection,
        etype: str,
        data: dict[str, Any],
        alert_kind: str,
        ts: float | None,
    ) -> StoredEvent:
        """The next event, inside the caller's transaction."""
        event_id = uuid7()
        topic = self.topics.event(etype, alert_kind)
        created = self.clock.wall() if ts is None else ts
        kept = self._advance_kept()
        (last,) = db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        seq = last + 1
        env = build_envelope(
            event_id=event_id,
            seq=seq,
            epoch=self.epoch,
            device=self.device,
            site=self.site,
            etype=etype,
            data=data,
            ts=created,
            synced=self._last_synced,
        )
        payload = dumps(env)
        db.execute(
            "INSERT INTO events(seq, id, type, topic, payload, created, kept_mark) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, event_id, etype, topic, payload, created, kept),
        )
        db.execute("UPDATE meta SET value=? WHERE key='last_seq'", (seq,))
        return StoredEvent(seq, event_id, etype, topic, payload, created, None)

    def _write(self, op: FaultOp, synced: bool, work: Any) -> Any:
        """Run `work(db)` in one write transaction; roll back on any failure; StorageError out."""
        with self._lock:
            db = self._db
            try:
                if not synced:
                    db.execute("PRAGMA synchronous=NORMAL")
                try:
                    db.execute("BEGIN IMMEDIATE")
                    result = work(db)
                    self.faults.check(op, db)
                    db.execute("COMMIT")
                    return result
                except BaseException:
                    rollback_open(db)
                    raise
                finally:
                    if not synced:
                        db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as e:
                kind, words = classify(e)
                self._make_room(kind)
                raise StorageError(f"{self.path}: {op} failed: {words}", kind) from e

    def mark_sent(
        self, seqs: list[int], when: float | None = None, *, epoch: str | None = None
    ) -> None:
        """The broker PUBACKed these. Losing this mark only causes a resend, never a loss.

        With `epoch`, marks nothing unless it is still this outbox's epoch (a PUBACK of an
        event published before a new epoch started must not mark the new event of that seq)."""
        if not seqs or (epoch is not None and epoch != self.epoch):
            return
        when = self.clock.wall() if when is None else when

        # No fsync for this commit: a lost mark costs a duplicate publish, never an event.
        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE events SET sent_at=? WHERE seq=? AND sent_at IS NULL",
                [(when, s) for s in seqs],
            )

        self._write("mark_sent", False, work)

    def mark_waiting(self, first: int, last: int) -> list[int]:
        """Put stored events back in the send queue (the `resend` command); return their seqs."""

        def work(db: sqlite3.Connection) -> list[int]:
            rows = db.execute(
                "SELECT seq FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last)
            ).fetchall()
            db.execute("UPDATE events SET sent_at=NULL WHERE seq BETWEEN ? AND ?", (first, last))
            return [r[0] for r in rows]

        return self._write("mark_sent", False, work)

    def site_ack(self, upto: int, epoch: str | None) -> AckResult:
        """The site stored every event of `epoch` up to `upto`: forget them.

        An ack without an epoch, or for another epoch, deletes nothing (SPEC 9.2). An ack of
        this epoch beyond the last `seq` means this outbox is older than what the site has
        (restored from a copy): a new epoch starts, so no `seq` is ever used twice."""
        if epoch != self.epoch:
            return self._foreign_ack(upto, epoch)
        last = self.meta("last_seq")
        if upto > last:
            self._rotate(
                f"the site acked seq {upto} of this epoch but this outbox ends at {last} "
                "(restored from an older copy?)"
            )
            return AckResult(False, 0, "beyond the last seq: new epoch started")

        # Unsynced like the PUBACK marks: if a power cut undoes this delete, the retained
        # `ack` arrives again on the next connect and it is redone.
        def work(db: sqlite3.Connection) -> int:
            cur = db.execute("DELETE FROM events WHERE seq <= ?", (upto,))
            db.execute("UPDATE meta SET value=MAX(value, ?) WHERE key='site_acked_seq'", (upto,))
            db.execute("INSERT OR REPLACE INTO info(key, value) VALUES ('own_ack_seen', '1')")
            return cur.rowcount

        dropped = self._write("site_ack", False, work)
        if dropped:
            self.scrub_due = True
        return AckResult(True, dropped)

    def scrub(self) -> bool:
        """Copy the WAL into the file and empty it, so the WAL's older copies of pages that
        held deleted events (secure_delete zeroes them in the file) leave the disk too. Best
        effort, and never waiting: a reader holding the WAL (`careterm outbox list` run by a
        technician) would otherwise hold the link thread for the busy timeout; the next scrub
        finishes it. True when done."""
        with self._lock:
            try:
                self._db.execute("PRAGMA busy_timeout=0")
                try:
                    busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            except sqlite3.Error as e:
                log.warning("outbox: WAL checkpoint failed: %s", classify(e)[1])
                return False
        if not busy:
            self.scrub_due = False
        return not busy

    def _foreign_ack(self, upto: int, epoch: str | None) -> AckResult:
        if epoch is None:
            return AckResult(False, 0, "no epoch: ignored")
        with self._lock:
            info = read_info(self._db)
        if info.get("own_ack_seen") or info.get("foreign_alerted") == epoch:
            return AckResult(False, 0, "another epoch: ignored")
        # The site knows an earlier outbox of this device that this data folder never had:
        # the data folder was wiped or the SD card replaced. Say so once per epoch.
        message = (
            f"the site holds events of an earlier outbox of this device (epoch {epoch}, up to "
            f"seq {upto}); this outbox (epoch {self.epoch}) started without it: the data "
            "folder was replaced or wiped; events of that epoch the site never stored are lost"
        )
        log.error("outbox: %s", message)

        alert = alert_data(
            "storage",
            "critical",
            message,
            epoch=self.epoch,
            previous_epoch=epoch,
            previous_acked_seq=upto,
        )

        # The note "said once" and the alert saying it commit together: a crash or a full disk
        # between the two must not leave the note without the alert.
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO info(key, value) VALUES ('foreign_alerted', ?)", (epoch,)
            )
            self._insert(db, "alert", alert, "storage", None)

        try:
            self._write("site_ack", True, work)
        except StorageError as e:
            log.error("outbox: could not record that: %s", e)
        return AckResult(False, 0, "another epoch: alerted")

    def _rotate(self, why: str) -> None:
        """Start a new epoch in this file. Events still stored are carried over with new `seq`
        numbers and their own `id` (the site drops the ones it has by id), so none is lost and
        no `seq` of the old epoch is used twice."""
        old = self.epoch
        epoch = new_epoch()

        # One transaction with the alert that says so: a crash or a full disk cannot leave a new
        # epoch the site was never told about.
        def work(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT id, type, topic, payload, created, kept_mark FROM events ORDER BY seq"
            ).fetchall()
            db.execute("DELETE FROM events")
            for seq, (eid, etype, topic, payload, created, kept) in enumerate(rows, 1):
                env = {**json.loads(payload), "seq": seq, "epoch": epoch}
                db.execute(
                    "INSERT INTO events(seq, id, type, topic, payload, created, kept_mark) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, eid, etype, topic, dumps(env), created, kept),
                )
            db.execute("UPDATE meta SET value=? WHERE key='last_seq'", (len(rows),))
            db.execute("UPDATE meta SET value=0 WHERE key='site_acked_seq'")
            db.execute("DELETE FROM info WHERE key='own_ack_seen'")
            put_info(db, self.device, self.site, epoch, note=why)
            db.execute(
                "INSERT OR REPLACE INTO info(key, value) VALUES ('foreign_alerted', ?)", (old,)
            )
            self.epoch = epoch
            alert = alert_data(
                "storage",
                "critical",
                f"{why}; a new epoch {epoch} started; {len(rows)} stored events carried over",
                epoch=epoch,
                previous_epoch=old,
                carried=len(rows),
            )
            self._insert(db, "alert", alert, "storage", None)
            return len(rows)

        try:
            carried = self._write("site_ack", True, work)
        except StorageError:
            self.epoch = old
            raise
        self._write_identity()
        log.error(
            "outbox: %s; epoch %s ends, epoch %s starts with %d events carried over",
            why,
            old,
            epoch,
            carried,
        )

    # -- expiry on kept time ------------------------------------------------------------------

    def _advance_kept(self) -> float:
        """Seconds this outbox has been open on a synchronised clock, over its whole life.

        Counted with the monotonic clock, only while NTP says the clock is synced, so that a
        wall clock that jumps (a Pi has no RTC) cannot make events look older than they are."""
        mono, synced = self.clock.monotonic(), self.clock.synced()
        if synced and self._last_synced:
            self._kept += max(0.0, mono - self._last_mono)
        self._last_mono, self._last_synced = mono, synced
        return self._kept

    def _save_kept(self) -> None:
        self._db.execute("UPDATE meta SET value=? WHERE key='kept_s'", (int(self._kept),))
        self._kept_saved_at = self._last_mono

    def expire(self, retain_days: int, now: float | None = None) -> int:
        """Forget sent events the site never acked once the device itself kept them
        `retain_days` on a synchronised clock, and their wall-clock age says the same.

        Never on an unsynchronised clock; never an event still waiting for the broker."""
        span = retain_days * 86400
        with self._lock:
            kept = self._advance_kept()
            wall = self.clock.wall() if now is None else now
            synced = self._last_synced
        if not synced:
            return 0

        def work(db: sqlite3.Connection) -> int:
            self._save_kept()
            cur = db.execute(
                "DELETE FROM events WHERE sent_at IS NOT NULL AND kept_mark <= ? AND created <= ?",
                (kept - span, wall - span),
            )
            return cur.rowcount

        dropped = self._write("expire", False, work)
        if dropped:
            self.scrub_due = True
        return dropped

    def next_session(self) -> int:
        """Advance and return the connection-session counter (durable)."""

        def work(db: sqlite3.Connection) -> int:
            db.execute("UPDATE meta SET value=value+1 WHERE key='session'")
            (n,) = db.execute("SELECT value FROM meta WHERE key='session'").fetchone()
            return int(n)

        return self._write("session", True, work)

    # -- reading ---------------------------------------------------------------------------

    def waiting(self, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Events not yet PUBACKed, in `seq` order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM events WHERE sent_at IS NULL AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [StoredEvent(*r) for r in rows]

    def iter_all(self, state: str = "all") -> Iterator[StoredEvent]:
        where = {"all": "1", "waiting": "sent_at IS NULL", "sent": "sent_at IS NOT NULL"}[state]
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM events WHERE {where} ORDER BY seq"
            ).fetchall()
        for r in rows:
            yield StoredEvent(*r)

    def meta(self, key: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def info(self) -> dict[str, str]:
        """The epoch and where it came from (`epoch`, `epoch_started`, `epoch_reason`, ...)."""
        with self._lock:
            return read_info(self._db)

    def stats(self, now: float | None = None) -> OutboxStats:
        now = self.clock.wall() if now is None else now
        with self._lock:
            kept = self._kept
            waiting, oldest_w = self._db.execute(
                "SELECT COUNT(*), MIN(created) FROM events WHERE sent_at IS NULL"
            ).fetchone()
            sent, oldest_s = self._db.execute(
                "SELECT COUNT(*), MIN(created) FROM events WHERE sent_at IS NOT NULL"
            ).fetchone()
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            (pages,) = self._db.execute("PRAGMA page_count").fetchone()
            (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        oldest = [x for x in (oldest_w, oldest_s) if x is not None]
        return OutboxStats(
            last_seq=meta.get("last_seq", 0),
            waiting=waiting,
            sent_unacked=sent,
            oldest_waiting_s=None if oldest_w is None else max(0.0, round(now - oldest_w, 3)),
            oldest_unacked_s=None if not oldest else max(0.0, round(now - min(oldest), 3)),
            site_acked_seq=meta.get("site_acked_seq", 0),
            size_bytes=pages * page_size,
            epoch=self.epoch,
            kept_s=round(kept, 1),
            reserve_held=self._reserve_held,
        )

    def close(self) -> None:
        with self._lock:
            try:
                if self._db.in_transaction:
                    rollback_open(self._db)
                try:
                    self._advance_kept()
                    self._save_kept()
                except sqlite3.Error:
                    pass
                self._db.close()
            except sqlite3.Error:
                pass


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0


def _remove_db_files(path: Path) -> None:
    for side in ("", "-wal", "-shm"):
        try:
            Path(f"{path}{side}").unlink()
        except FileNotFoundError:
            pass


def _wal_of(path: Path) -> Path:
    return Path(f"{path}-wal")


def outbox_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "outbox.sqlite"
