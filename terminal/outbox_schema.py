"""The outbox's SQLite schema: tables, the `info` rows that name its epoch, checks of a file
found at start, and the migration of a version 1 outbox (no epoch)."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from datetime import datetime

from terminal.envelope import dumps
from terminal.storage import rollback_open

log = logging.getLogger("careterm.outbox")

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    type      TEXT NOT NULL,
    topic     TEXT NOT NULL,
    payload   BLOB NOT NULL,
    created   REAL NOT NULL,
    sent_at   REAL,
    kept_mark REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_waiting ON events(seq) WHERE sent_at IS NULL;
"""
META_KEYS = ("schema", "last_seq", "session", "site_acked_seq", "kept_s")


def check_existing(db: sqlite3.Connection, device: str) -> str | None:
    """None when `db` is a usable outbox of this device; otherwise why it is not."""
    (ok,) = db.execute("PRAGMA quick_check").fetchone()
    if ok != "ok":
        return f"the outbox file is damaged ({ok})"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"meta", "events"} <= tables:
        return "the outbox file holds no outbox (empty or another database)"
    if schema_version(db) >= 2:
        info = read_info(db) if "info" in tables else {}
        if not info.get("epoch"):
            return "the outbox file has no epoch"
        if info.get("device") not in (None, device):
            return f"the outbox file belongs to device {info.get('device')!r}"
    return None


def read_info(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM info").fetchall())


def migrate_v1(db: sqlite3.Connection, device: str, site: str) -> str:
    """A version 1 outbox (no epoch): give it one; stored envelopes gain it, seq goes on."""
    epoch = new_epoch()
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        cols = {r[1] for r in db.execute("PRAGMA table_info(events)")}
        if "kept_mark" not in cols:
            db.execute("ALTER TABLE events ADD COLUMN kept_mark REAL NOT NULL DEFAULT 0")
        rows = db.execute("SELECT seq, payload FROM events").fetchall()
        for seq, payload in rows:
            env = json.loads(payload)
            env = {**{k: env[k] for k in ("v", "id", "seq")}, "epoch": epoch, **env}
            db.execute("UPDATE events SET payload=? WHERE seq=?", (dumps(env), seq))
        put_info(db, device, site, epoch, note="migrated from a version 1 outbox")
        db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', 0)")
        db.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
        db.execute("COMMIT")
    except BaseException:
        rollback_open(db)
        raise
    log.warning("outbox: version 1 outbox migrated: epoch %s, seq continues", epoch)
    return epoch


def put_info(db: sqlite3.Connection, device: str, site: str, epoch: str, note: str) -> None:
    rows = {
        "epoch": epoch,
        "device": device,
        "site": site,
        "epoch_started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "epoch_reason": note,
    }
    db.executemany("INSERT OR REPLACE INTO info(key, value) VALUES (?, ?)", rows.items())


def schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    return int(row[0]) if row else 1


def new_epoch() -> str:
    """A fresh epoch id: 16 random bytes as 32 lower-case hex (terminal.payloads.Epoch)."""
    return secrets.token_hex(16)
