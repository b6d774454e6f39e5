"""Fixtures for the site tools: in-process devices, collector processes, a PostgreSQL database."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from central.db import open_db
from terminal.config import load_config
from terminal.mqtt_link import LinkOptions
from terminal.uplink import Uplink
from tests.conftest import careterm_cmd, careterm_env, now_clear_of_midnight, write_config

SITE_TZ = timezone(timedelta(hours=8))  # the site tools' default --utc-offset


def site_today() -> date:
    """Today at the site tools' default offset, as `site roster build` will see it (never in the
    last minutes of a day: see tests.conftest.now_clear_of_midnight)."""
    return now_clear_of_midnight(SITE_TZ).date()


PG_ADMIN_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


@pytest.fixture
def device_factory(tmp_path: Path) -> Iterator[Callable[..., Uplink]]:
    """Real devices: `terminal.uplink.Uplink` with its own outbox, connected to `broker_url`."""
    made: list[Uplink] = []

    def make(device_id: str, broker_url: str, site: str = "main", start: bool = True) -> Uplink:
        d = tmp_path / f"dev-{device_id}"
        d.mkdir(exist_ok=True)
        cfg = load_config(
            write_config(
                d / "device.toml",
                device_id=device_id,
                site=site,
                data_dir=d / "data",
                broker_url=broker_url,
            )
        )
        up = Uplink(
            cfg,
            options=LinkOptions(backoff_min_s=0.2, backoff_max_s=0.5, telemetry_interval_s=3600),
        )
        made.append(up)
        if start:
            up.start()
        return up

    yield make
    for up in made:
        try:
            up.stop(2)
        except Exception:
            pass


class CollectorProc:
    """`careterm site collect` as a process the test can SIGKILL and start again."""

    def __init__(self, workdir: Path, broker_url: str, db_url: str, *extra: str) -> None:
        self.args = ["site", "collect", "--broker", broker_url, "--db", db_url, *extra]
        self.log = workdir / f"collect-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CollectorProc:
        f = self.log.open("ab")
        self.proc = subprocess.Popen(
            careterm_cmd("-v", *self.args), stdout=f, stderr=f, env=careterm_env()
        )
        f.close()
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc, self.proc = self.proc.returncode, None
        return rc

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def collector_factory(tmp_path: Path) -> Iterator[Callable[..., CollectorProc]]:
    made: list[CollectorProc] = []

    def make(broker_url: str, db_url: str, *extra: str) -> CollectorProc:
        c = CollectorProc(tmp_path, broker_url, db_url, *extra)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def _admin_engine() -> Any:
    for url in PG_ADMIN_URLS:
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
            return eng, url
        except Exception:
            eng.dispose()
    return None, None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    eng, url = _admin_engine()
    if eng is None:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"careterm_site_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.rsplit("/", 1)[0] + "/" + name
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    """A new site database, on SQLite and on PostgreSQL, opened as a collector opens it."""
    url = f"sqlite:///{tmp_path}/site.db" if request.param == "sqlite" else None
    eng = open_db(url or request.getfixturevalue("pg_url"), writer=True)
    yield eng
    eng.dispose()
