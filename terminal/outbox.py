"""Durable outbox: every event is committed and synced to disk, with its `seq`, before anyone is told.

One SQLite file in WAL mode with `synchronous=FULL`. The `seq` counter lives in the same
database and is advanced in the same transaction that stores the event, so a crash can
neither lose an event that was reported stored nor reuse a `seq`. Rows move through
three states: waiting (not yet PUBACKed by the broker), sent (PUBACKed, kept until the
site's `ack` covers it or `retain_days` pass) and gone.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal.envelope import build_envelope, dumps, uuid7
from terminal.topics import Topics

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    type     TEXT NOT NULL,
    topic    TEXT NOT NULL,
    payload  BLOB NOT NULL,
    created  REAL NOT NULL,
    sent_at  REAL
);
CREATE INDEX IF NOT EXISTS events_waiting ON events(seq) WHERE sent_at IS NULL;
"""


class StorageError(Exception):
    """The event could not be made durable (disk full, read-only, I/O error)."""


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
    ) -> None:
        self.path = Path(path)
        self.device = device
        self.site = site
        self.topic_root = topic_root
        self.topics = Topics(topic_root, site, device)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            if max_pages is not None:
                self._db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            for key in ("last_seq", "session", "site_acked_seq"):
                self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, 0)", (key,))
        except sqlite3.Error as e:
            raise StorageError(f"{self.path}: cannot open the outbox: {e}") from e

    # -- writing ---------------------------------------------------------------------------

    def store(
        self, etype: str, data: dict[str, Any], *, alert_kind: str = "", ts: float | None = None
    ) -> StoredEvent:
        """Assign the next `seq`, store the event and sync it; return only once it is durable."""
        event_id = uuid7()
        topic = self.topics.event(etype, alert_kind)
        created = time.time() if ts is None else ts
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    (last,) = self._db.execute(
                        "SELECT value FROM meta WHERE key='last_seq'"
                    ).fetchone()
                    seq = last + 1
                    env = build_envelope(
                        event_id=event_id,
                        seq=seq,
                        device=self.device,
                        site=self.site,
                        etype=etype,
                        data=data,
                        ts=created,
                    )
                    payload = dumps(env)
                    self._db.execute(
                        "INSERT INTO events(seq, id, type, topic, payload, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (seq, event_id, etype, topic, payload, created),
                    )
                    self._db.execute("UPDATE meta SET value=? WHERE key='last_seq'", (seq,))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise StorageError(f"{self.path}: event not stored: {e}") from e
        return StoredEvent(seq, event_id, etype, topic, payload, created, None)

    def mark_sent(self, seqs: list[int], when: float | None = None) -> None:
        """The broker PUBACKed these. Losing this mark only causes a resend, never a loss."""
        if not seqs:
            return
        when = time.time() if when is None else when
        with self._lock:
            # No fsync for this commit: a lost mark costs a duplicate publish, never an event.
            # The next synced commit (the next store) makes it durable anyway.
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "UPDATE events SET sent_at=? WHERE seq=? AND sent_at IS NULL",
                    [(when, s) for s in seqs],
                )
                self._db.execute("COMMIT")
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def mark_waiting(self, first: int, last: int) -> list[int]:
        """Put stored events back in the send queue (the `resend` command); return their seqs."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last)
            ).fetchall()
            self._db.execute(
                "UPDATE events SET sent_at=NULL WHERE seq BETWEEN ? AND ?", (first, last)
            )
        return [r[0] for r in rows]

    def site_ack(self, upto: int) -> int:
        """The site stored every event up to `upto`: forget them. Returns how many were dropped."""
        with self._lock:
            (last,) = self._db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
            upto = min(int(upto), last)
            # Unsynced like the PUBACK marks: if a power cut undoes this delete, the retained
            # `ack` arrives again on the next connect and it is redone.
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute("DELETE FROM events WHERE seq <= ?", (upto,))
                self._db.execute(
                    "UPDATE meta SET value=MAX(value, ?) WHERE key='site_acked_seq'", (upto,)
                )
                self._db.execute("COMMIT")
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            return cur.rowcount

    def expire(self, retain_days: int, now: float | None = None) -> int:
        """Forget sent events older than `retain_days` that the site never acked."""
        cutoff = (time.time() if now is None else now) - retain_days * 86400
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM events WHERE sent_at IS NOT NULL AND created < ?", (cutoff,)
            )
            return cur.rowcount

    def next_session(self) -> int:
        """Advance and return the connection-session counter (durable)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE meta SET value=value+1 WHERE key='session'")
            (n,) = self._db.execute("SELECT value FROM meta WHERE key='session'").fetchone()
            self._db.execute("COMMIT")
            return n

    # -- reading ---------------------------------------------------------------------------

    def waiting(self, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Events not yet PUBACKed, in `seq` order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, type, topic, payload, created, sent_at FROM events "
                "WHERE sent_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [StoredEvent(*r) for r in rows]

    def iter_all(self, state: str = "all") -> Iterator[StoredEvent]:
        where = {"all": "1", "waiting": "sent_at IS NULL", "sent": "sent_at IS NOT NULL"}[state]
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, type, topic, payload, created, sent_at FROM events "
                f"WHERE {where} ORDER BY seq"
            ).fetchall()
        for r in rows:
            yield StoredEvent(*r)

    def meta(self, key: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def stats(self, now: float | None = None) -> OutboxStats:
        now = time.time() if now is None else now
        with self._lock:
            waiting, oldest_w = self._db.execute(
                "SELECT COUNT(*), MIN(created) FROM events WHERE sent_at IS NULL"
            ).fetchone()
            sent, oldest_s = self._db.execute(
                "SELECT COUNT(*), MIN(created) FROM events WHERE sent_at IS NOT NULL"
            ).fetchone()
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            (pages,) = self._db.execute("PRAGMA page_count").fetchone()
            (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        return OutboxStats(
            last_seq=meta.get("last_seq", 0),
            waiting=waiting,
            sent_unacked=sent,
            oldest_waiting_s=None if oldest_w is None else round(now - oldest_w, 3),
            oldest_unacked_s=None
            if oldest_s is None and oldest_w is None
            else round(now - min(x for x in (oldest_w, oldest_s) if x is not None), 3),
            site_acked_seq=meta.get("site_acked_seq", 0),
            size_bytes=pages * page_size,
        )

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass


def outbox_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "outbox.sqlite"
