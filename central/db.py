"""The site database: schema (SQLAlchemy Core) and engine set-up for SQLite and PostgreSQL.

docs/site.md ("Database") describes every table for the people who write reports and the
site console against it. Schema version 2: outbox epochs (SPEC 9.2), reason and prompt
events (SPEC 9.3), latest telemetry, and the alert forwarder's delivery state (SPEC 9.5).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from terminal.cliutil import UsageError

SCHEMA_VERSION = 2
NO_EPOCH = ""
FIRST_FILE_WAIT_S = 10.0
"""How long the long-running readers (`site alerts`, `site dashboard`) wait for a missing
SQLite file: `site collect`, started at the same moment, creates it."""
"""The `epoch` stored for events of version-1 devices, whose envelopes carry none."""

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("value", String(64), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),  # the envelope id: each event stored once
    Column("device", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("epoch", String(64), nullable=False, default=NO_EPOCH),  # '' for version 1
    Column("seq", BigInteger),  # null for the non-durable storage alert
    Column("type", String(32), nullable=False),
    Column("kind", String(32)),  # alert kind
    Column("ts", String(40)),  # the device's local time, as sent
    Column("day", String(10)),  # local date of `ts` (YYYY-MM-DD)
    Column("hour", Integer),  # local hour of `ts`
    Column("clock_synced", Boolean),
    Column("valid", Boolean, nullable=False, default=True),  # `data` matches its type's model
    Column("received_at", Float, nullable=False),  # Unix time at the collector
    Column("topic", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # the whole envelope as received (JSON)
    Index("events_stream_seq", "device", "epoch", "seq"),
    Index("events_type_day", "type", "day"),
)

ratings = Table(
    "ratings",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("window", String(64)),
    Column("staff", String(64)),
    Column("score", Integer, nullable=False),
    Column("scale", Integer, nullable=False),
    Column("label", String(64)),
    Column("reason", String(200)),  # from the `reason` event (v2) or the rating itself (v1)
    Column("reason_asked", Boolean, nullable=False, default=False),
    Column("prompt", String(64)),  # the prompt answered; null: no prompt was open
    Column("ticket", String(64)),  # queue number from `cmd/prompt`
    Column("misuse", Boolean, nullable=False),
    Column("response_ms", Integer),
    Column("ts", String(40)),
    Column("day", String(10)),
    Column("hour", Integer),
    Index("ratings_day", "day"),
)

reasons = Table(
    "reasons",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("rating", String(64), nullable=False),  # the rating event's id
    Column("device", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("window", String(64)),
    Column("staff", String(64)),
    Column("reason", String(200)),  # null: timed out or skipped
    Column("ts", String(40)),
    Column("day", String(10)),
    Column("hour", Integer),
    Index("reasons_rating", "rating"),
)

prompts = Table(
    "prompts",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("prompt", String(64), nullable=False),
    Column("ticket", String(64)),
    Column("device", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("window", String(64)),
    Column("staff", String(64)),
    Column("outcome", String(16), nullable=False),  # expired | superseded
    Column("ts", String(40)),
    Column("day", String(10)),
    Column("hour", Integer),
    Index("prompts_day", "day"),
)

devices = Table(
    "devices",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("role", String(32)),
    Column("version", String(64)),
    Column("epoch", String(64)),  # the current outbox epoch ('' for version 1; null: no events)
    # The current epoch's accounting, copied from `streams` for reports and the console:
    Column("first_seq", BigInteger),
    Column("acked_seq", BigInteger, nullable=False, default=0),
    Column("max_seq", BigInteger, nullable=False, default=0),
    Column("state", String(16)),  # online | offline (from the retained status)
    Column("reason", String(16)),  # offline reason: shutdown | lost
    Column("session", Integer, nullable=False, default=0),
    Column("status_ts", String(40)),  # the status message's own ts
    Column("state_since", Float),  # Unix time at the collector when `state` last changed
    Column("last_seen", Float),  # Unix time of the last message of any kind
    Column("last_event_at", Float),  # Unix time of the last event stored
    Column("ping_at", Float),
    Column("alerts_stored", BigInteger, nullable=False, default=0),  # orders alert_deliveries.n
)

streams = Table(
    "streams",
    metadata,
    # One outbox epoch of one device: seq accounting happens here (SPEC 9.2).
    Column("device", String(64), primary_key=True),
    Column("epoch", String(64), primary_key=True),  # '' for version 1
    Column("site", String(64), nullable=False),
    Column("first_seq", BigInteger),  # lowest seq stored
    Column("max_seq", BigInteger, nullable=False, default=0),  # highest seq known of
    Column("acked_seq", BigInteger, nullable=False, default=0),  # all seqs <= this accounted for
    Column("ack_published", BigInteger, nullable=False, default=0),
    Column("reported_seq", BigInteger),  # last_seq from the device's answer to `ping`
    Column("open_gaps", Integer, nullable=False, default=0),
    Column("first_seen", Float, nullable=False),
)

seq_aliases = Table(
    "seq_aliases",
    metadata,
    # An event a device carried into a new epoch under a new seq (its outbox rotated, SPEC
    # 9.2): stored once in `events` under its first (epoch, seq); its later place is recorded
    # here, so the new epoch's accounting sees that seq as stored.
    Column("device", String(64), primary_key=True),
    Column("epoch", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("session", Integer, primary_key=True),
    Column("online_ts", String(40)),
    Column("offline_ts", String(40)),
    Column("offline_reason", String(16)),
    Column("seen_at", Float, nullable=False),
)

gaps = Table(
    "gaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("epoch", String(64), nullable=False, default=NO_EPOCH),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("detected_at", Float, nullable=False),
    Column("resends", Integer, nullable=False, default=0),
    Column("resend_at", Float),
    Column("cid", String(64)),
    # open | filled | lost (the device no longer has some) | before (a head gap: the device
    # had forgotten them before this database first saw the epoch) | superseded (the device
    # moved to a new epoch first: what it still held was carried into that epoch)
    Column("state", String(12), nullable=False, default="open"),
    Column("lost", JSON, nullable=False, default=list),  # [[a, b], ...] the device no longer has
    Column("closed_at", Float),
    Index("gaps_stream_state", "device", "epoch", "state"),
    Index("gaps_cid", "cid"),
)

telemetry = Table(
    "telemetry",
    metadata,
    # The latest telemetry of each device (SPEC 4), for the site console.
    Column("device", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("ts", String(40)),
    Column("uptime_s", Float),
    Column("outbox_depth", BigInteger),
    Column("oldest_pending_s", Float),
    Column("printer", JSON),
    Column("card_reader", JSON),
    Column("buttons", JSON),
    Column("clock_synced", Boolean),
    Column("cert_days_left", Integer),
    Column("payload", Text, nullable=False),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    # One row per stored alert: the webhook forwarder's durable position (SPEC 9.5).
    Column("event_id", String(64), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("n", BigInteger, nullable=False),  # order of storing, per device
    Column("stored_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try", Float, nullable=False, default=0.0),
    Column("delivered_at", Float),
    Column("last_error", String(300)),
    Index("alert_deliveries_order", "device", "n"),
    Index("alert_deliveries_pending", "delivered_at", "device", "n"),
)

# -- Site console (SPEC 9.7, central/dashboard): who acknowledged which alert ----------------

alert_acks = Table(
    "alert_acks",
    metadata,
    Column("event_id", String(64), primary_key=True),  # the alert's envelope id
    Column("acked_by", String(64), nullable=False),  # console user name
    Column("acked_at", Float, nullable=False),  # Unix time
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")  # first: the WAL switch may wait for another process
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _sqlite_writer(engine: Engine) -> None:
    """Transactions take SQLite's write lock at BEGIN: two writers never both hold a read
    lock and then fail to upgrade it (SQLITE_BUSY at once, which busy_timeout does not cover)."""

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_db(
    url: str,
    create: bool = True,
    *,
    writer: bool = False,
    must_exist: bool = False,
    wait_s: float = 0.0,
) -> Engine:
    """An engine for `url` (a plain path means SQLite), with the schema created if missing.
    `writer`: the caller writes (collector, alert forwarder), so SQLite locks at BEGIN.
    `must_exist`: the caller reads what `site collect` stores (alerts, console, gaps), so a
    missing SQLite file is a wrong path, refused, not a new empty database to wait on
    forever; `wait_s` gives a `site collect` started at the same moment (a first boot, the
    demo) that long to create it first."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except Exception as e:  # unknown dialect, missing driver, malformed URL
        raise UsageError(
            f"--db {url!r}: {e} (use sqlite:///path.db or postgresql+psycopg://user@host/db)"
        ) from None
    if engine.dialect.name == "sqlite":
        if must_exist:
            _sqlite_file_exists(engine, wait_s)
        event.listen(engine, "connect", _sqlite_pragmas)
        if writer:
            _sqlite_writer(engine)
    elif engine.dialect.name != "postgresql":
        raise UsageError(
            f"--db {url!r}: database {engine.dialect.name!r} is not supported: "
            "use sqlite:///path.db or postgresql+psycopg://user@host/db"
        )
    if create:
        create_schema(engine)
    return engine


def _sqlite_file_exists(engine: Engine, wait_s: float) -> None:
    """Refuse (UsageError) a SQLite URL whose file does not exist (after `wait_s`): SQLite
    would create an empty one."""
    name = engine.url.database or ""
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    deadline = time.monotonic() + wait_s
    while not path.is_file():
        if time.monotonic() >= deadline:
            raise UsageError(
                f"--db {_where(engine)}: no SQLite database at {path.resolve()}: check the "
                f"path (a relative one is taken from the current directory, {Path.cwd()}; "
                "sqlite:////abs/path.db is absolute); `careterm site collect --db ...` "
                "creates the database"
            )
        time.sleep(0.2)


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create missing tables (collectors starting together may race, so try again); refuse
    (UsageError) a database made with the earlier schema."""
    for i in range(attempts):
        try:
            if _earlier_schema(engine):
                raise UsageError(
                    f"--db {_where(engine)}: this database has an earlier careterm schema "
                    f"(before version {SCHEMA_VERSION}, outbox epochs); collect into a new "
                    "database (docs/site.md, Upgrading)"
                )
            metadata.create_all(engine)
            with engine.begin() as conn:
                if conn.execute(select(meta.c.value).where(meta.c.key == "schema")).first() is None:
                    conn.execute(
                        insert_ignore(engine, meta), {"key": "schema", "value": str(SCHEMA_VERSION)}
                    )
            return
        except OperationalError as e:
            if i == attempts - 1:
                raise UsageError(f"--db {_where(engine)}: {str(e).splitlines()[0]}") from None
            time.sleep(0.2 * (i + 1))
        except (ProgrammingError, IntegrityError):
            time.sleep(0.2)  # another process created it between the check and the CREATE


def _earlier_schema(engine: Engine) -> bool:
    """A database with an `events` table made before schema version 2 (no `epoch`)."""
    names = set(inspect(engine).get_table_names())
    if "events" not in names:
        return False
    return "epoch" not in {c["name"] for c in inspect(engine).get_columns("events")}


def _insert(engine: Engine | Connection) -> Any:
    """The dialect's INSERT construct (both know ON CONFLICT)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def insert_ignore(engine: Engine | Connection, table: Table):
    """INSERT ... ON CONFLICT DO NOTHING for the engine's dialect."""
    return _insert(engine)(table).on_conflict_do_nothing()


def upsert(engine: Engine | Connection, table: Table, key: list[str], columns: list[str]):
    """INSERT ... ON CONFLICT (key) DO UPDATE SET columns = the new values."""
    stmt = _insert(engine)(table)
    return stmt.on_conflict_do_update(
        index_elements=key, set_={c: getattr(stmt.excluded, c) for c in columns}
    )


def is_retryable(e: OperationalError) -> bool:
    """A deadlock or serialization failure (PostgreSQL), or a busy database (SQLite): the
    transaction was rolled back as a whole and may simply run again."""
    code = getattr(e.orig, "sqlstate", None) or getattr(e.orig, "pgcode", None)
    if code in ("40P01", "40001"):
        return True
    return "database is locked" in str(e.orig)


# -- bulk writes for the collector --------------------------------------------------------

_COPY_IN = "careterm_events_in"


def _cols(conn: Connection, cols: list[str]) -> str:
    q = conn.dialect.identifier_preparer.quote
    return ", ".join(q(c) for c in cols)


def bulk_insert(conn: Connection, table: Table, cols: list[str], rows: list[tuple]) -> None:
    """Insert rows the caller knows are new: COPY on PostgreSQL, executemany on SQLite (both
    far cheaper per row than SQLAlchemy's multi-row INSERT, whose SQL text is parsed anew
    for every batch size)."""
    if not rows:
        return
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {table.name} ({_cols(conn, cols)}) FROM STDIN") as cp,
        ):
            for r in rows:
                cp.write_row(r)
    else:
        marks = ", ".join("?" * len(cols))
        raw.cursor().executemany(
            f"INSERT INTO {table.name} ({_cols(conn, cols)}) VALUES ({marks})", rows
        )


def insert_new_events(conn: Connection, cols: list[str], rows: list[tuple]) -> set[str]:
    """Insert event rows (`id` first, rows sorted by id) unless their id is stored already;
    returns the ids that were new. PostgreSQL: COPY into a temporary table, then one
    INSERT ... SELECT ... ORDER BY id ON CONFLICT DO NOTHING RETURNING id, so a collector
    takes the id locks in id order (as every other collector does). SQLite: the caller holds
    the database's one write lock (BEGIN IMMEDIATE), so a look-up then an insert is exact."""
    if not rows:
        return set()
    assert cols[0] == "id"
    names = _cols(conn, cols)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            # In every transaction, not once per connection: a temporary table created by a
            # transaction that then rolled back (a value the database refuses, a deadlock)
            # is gone, and a flag saying it exists made every later batch fail for good.
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_COPY_IN} (LIKE events INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY {_COPY_IN} ({names}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            cur.execute(
                f"INSERT INTO events ({names}) SELECT {names} FROM {_COPY_IN} ORDER BY id "
                "ON CONFLICT (id) DO NOTHING RETURNING id"
            )
            return {r[0] for r in cur.fetchall()}
    raw = conn.connection.driver_connection
    cur = raw.cursor()
    ids = [r[0] for r in rows]
    seen: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        cur.execute(f"SELECT id FROM events WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        seen.update(r[0] for r in cur.fetchall())
    new = [r for r in rows if r[0] not in seen]
    if new:
        cur.executemany(f"INSERT INTO events ({names}) VALUES ({', '.join('?' * len(cols))})", new)
    return {r[0] for r in new}
