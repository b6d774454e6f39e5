"""The site database: schema (SQLAlchemy Core) and engine set-up for SQLite and PostgreSQL."""

from __future__ import annotations

import time
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
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from terminal.cliutil import UsageError

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),  # the envelope id: each event stored once
    Column("device", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("seq", BigInteger),  # null for the non-durable storage alert
    Column("type", String(16), nullable=False),
    Column("kind", String(32)),  # alert kind
    Column("ts", String(40)),  # the device's local time, as sent
    Column("day", String(10)),  # local date of `ts` (YYYY-MM-DD)
    Column("hour", Integer),  # local hour of `ts`
    Column("clock_synced", Boolean),
    Column("received_at", Float, nullable=False),  # Unix time at the collector
    Column("topic", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # the whole envelope as received (JSON)
    Index("events_device_seq", "device", "seq"),
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
    Column("reason", String(200)),
    Column("misuse", Boolean, nullable=False),
    Column("response_ms", Integer),
    Column("ts", String(40)),
    Column("day", String(10)),
    Column("hour", Integer),
    Index("ratings_day", "day"),
)

devices = Table(
    "devices",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("role", String(32)),
    Column("version", String(32)),
    Column("first_seq", BigInteger),  # the first seq this site saw (its baseline)
    Column(
        "acked_seq", BigInteger, nullable=False, default=0
    ),  # every seq <= this is accounted for
    Column("ack_published", BigInteger, nullable=False, default=0),
    Column("max_seq", BigInteger, nullable=False, default=0),
    Column("reported_seq", BigInteger),  # last_seq from the device's answer to `ping`
    Column(
        "probe", String(16), nullable=False, default="done"
    ),  # "asking" while the baseline is checked
    Column("probe_cid", String(64)),
    Column("probe_at", Float),
    Column("ping_at", Float),
    Column("state", String(16)),  # online | offline (from the retained status)
    Column("reason", String(16)),
    Column("session", Integer, nullable=False, default=0),
    Column("status_ts", String(40)),
    Column("last_seen", Float),
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
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("detected_at", Float, nullable=False),
    Column("resends", Integer, nullable=False, default=0),
    Column("resend_at", Float),
    Column("cid", String(64)),
    Column("state", String(8), nullable=False, default="open"),  # open | filled | lost
    Column("lost", JSON, nullable=False, default=list),  # [[a, b], ...] the device no longer has
    Column("closed_at", Float),
    Index("gaps_device_state", "device", "state"),
    UniqueConstraint("device", "first_seq", name="gaps_device_first"),
)

# -- Site console (SPEC 9.7): written by the collector (central/health.py) and the console ------

device_health = Table(
    "device_health",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    # Since when the device has been in its current `devices.state` (collector clock, Unix
    # time): a Last Will carries the time of its connect, not of the loss.
    Column("state", String(16)),
    Column("session", Integer),
    Column("state_since", Float),
    # The latest telemetry (SPEC 4), as sent.
    Column("telemetry_ts", String(40)),  # the device's clock
    Column("telemetry_at", Float),  # Unix time at the collector
    Column("uptime_s", Float),
    Column("outbox_depth", Integer),
    Column("oldest_pending_s", Float),
    Column("printer", String(32)),
    Column("card_reader", String(32)),
    Column("buttons", String(32)),
    Column("clock_synced", Boolean),
    Column("extra", Text),  # other telemetry keys (JSON), e.g. cert_days_left, pad_state
)

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


def open_db(url: str, create: bool = True) -> Engine:
    """An engine for `url` (a plain path means SQLite), with the schema created if missing."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    try:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    except Exception as e:  # unknown dialect, missing driver, malformed URL
        raise UsageError(
            f"--db {url!r}: {e} (use sqlite:///path.db or postgresql+psycopg://user@host/db)"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        create_schema(engine)
    return engine


def create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create missing tables; collectors starting together may race, so try again."""
    for i in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except OperationalError as e:
            if i == attempts - 1:
                raise UsageError(
                    f"--db {engine.url.render_as_string(hide_password=True)}: "
                    f"{str(e).splitlines()[0]}"
                ) from None
            time.sleep(0.2 * (i + 1))
        except (ProgrammingError, IntegrityError):
            time.sleep(0.2)  # another process created it between the check and the CREATE


def insert_ignore(engine: Engine, table: Table):
    """INSERT ... ON CONFLICT DO NOTHING for the engine's dialect."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise UsageError(
            f"database {engine.dialect.name!r} is not supported: use SQLite or PostgreSQL"
        )
    return insert(table).on_conflict_do_nothing()
