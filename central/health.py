"""Device health for the site console: latest telemetry per device, and since when it is
online or offline (table `device_health`). The collector calls `HealthBook.record` after
each commit; nothing here takes part in event accounting, and a failure here only logs.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from central.db import device_health, devices, insert_ignore
from central.messages import Telemetry

log = logging.getLogger("careterm.collect")


def _unix(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class HealthBook:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._failing = False

    def record(
        self, telemetry: list[Telemetry], status_devices: set[str], now: float | None = None
    ) -> None:
        """Store the newest telemetry per device; note state changes of `status_devices`
        (read back from `devices`, which the accounting has just committed)."""
        if not telemetry and not status_devices:
            return
        now = time.time() if now is None else now
        latest = {t.device: t for t in telemetry}  # arrival order: the last one wins
        try:
            with self.engine.begin() as conn:
                for t in latest.values():
                    self._telemetry(conn, t, now)
                for dev in sorted(status_devices):
                    self._state(conn, dev, now)
        except Exception as e:  # telemetry is QoS 0 anyway; never disturb the collector
            if not self._failing:
                log.warning("collect: device health not stored: %s", str(e).splitlines()[0])
            self._failing = True
            return
        self._failing = False

    def _row(self, conn: Connection, device: str, site: str) -> Any:
        conn.execute(insert_ignore(self.engine, device_health), {"device": device, "site": site})
        return conn.execute(select(device_health).where(device_health.c.device == device)).one()

    def _telemetry(self, conn: Connection, t: Telemetry, now: float) -> None:
        self._row(conn, t.device, t.site)
        conn.execute(
            update(device_health)
            .where(device_health.c.device == t.device)
            .values(
                site=t.site,
                telemetry_ts=t.ts,
                telemetry_at=now,
                uptime_s=t.uptime_s,
                outbox_depth=t.outbox_depth,
                oldest_pending_s=t.oldest_pending_s,
                printer=t.printer,
                card_reader=t.card_reader,
                buttons=t.buttons,
                clock_synced=t.clock_synced,
                extra=t.extra,
            )
        )

    def _state(self, conn: Connection, device: str, now: float) -> None:
        dev = conn.execute(select(devices).where(devices.c.device == device)).first()
        if dev is None or dev.state is None:
            return
        row = self._row(conn, device, dev.site)
        if (row.state, row.session) == (dev.state, dev.session) and row.state_since is not None:
            return
        since = now
        if row.state is None and dev.reason != "lost":
            # First sight (e.g. a database older than this table): the status's own time is
            # right for an online or a clean shutdown; a Will's time is its connect time.
            sent = _unix(dev.status_ts)
            if sent is not None and sent <= now:
                since = sent
        conn.execute(
            update(device_health)
            .where(device_health.c.device == device)
            .values(state=dev.state, session=dev.session, state_since=since)
        )
