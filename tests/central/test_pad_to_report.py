"""The whole chain: a headless pad process with a pty keypad -> mosquitto -> collector -> report."""

from __future__ import annotations

import csv
import io
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.central.test_collector_e2e import db_count
from tests.conftest import careterm_cmd, careterm_env, run_careterm, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@contextmanager
def pad_at_the_site(
    config_writer, broker, pty, collector_factory, tmp_path: Path, rating: str
) -> Iterator[str]:
    """A collector into a new SQLite database and a headless pad process (keypad on `pty`,
    `rating` its [rating] table) that the site sees online; yields the database's URL."""
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", "--gap-timeout", "1").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    cfg = config_writer(
        broker_url=broker.url,
        extra=f"""
[rating]
{rating}
debounce_ms = 40

[buttons]
driver = "serial"
device = "{pty.path}"
baudrate = 9600
""",
    )
    with open(tmp_path / "pad.log", "ab") as log:
        pad = subprocess.Popen(
            careterm_cmd("pad", "--config", str(cfg), "--headless"),
            env=careterm_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_for(lambda: _online(db), 20, what="pad online at the site")
        yield db
    finally:
        pad.terminate()
        pad.wait(10)


def report_row(db: str) -> dict[str, str]:
    """The one row of `site report --format csv`."""
    r = run_careterm("site", "report", "--db", db, "--format", "csv")
    assert r.returncode == 0, r.stderr
    (row,) = csv.DictReader(io.StringIO(r.stdout))
    return row


def test_key_presses_on_a_real_pad_process_end_up_in_the_report(
    config_writer, broker, pty, collector_factory, tmp_path: Path
) -> None:
    free = 'mode = "free"\ncooldown_s = 0'
    with pad_at_the_site(config_writer, broker, pty, collector_factory, tmp_path, free) as db:
        for key in b"4433":
            pty.write(bytes([key]))
            time.sleep(0.25)
        wait_for(lambda: db_count(db) == 4, 20, what="four ratings stored")
    row = report_row(db)
    assert (
        row["window"],
        row["count"],
        row["score_3"],
        row["score_4"],
        row["satisfied_pct"],
        row["misuse"],
    ) == ("W03", "4", "2", "2", "100.0", "0")


def _online(db: str) -> bool:
    from central.db import devices
    from tests.central.test_collector_e2e import db_rows

    try:
        return any(d.state == "online" for d in db_rows(db, devices))
    except Exception:
        return False
