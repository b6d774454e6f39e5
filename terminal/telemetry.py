"""Telemetry (SPEC 4, every 60 s at QoS 0), the `outbox_backlog` watch (SPEC 5) and the `clock`
watch (SPEC 4.1)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from terminal.certinfo import cert_days_left
from terminal.clock import clock_synced, now_iso
from terminal.config import DeviceConfig
from terminal.outbox import Outbox

log = logging.getLogger("careterm.telemetry")

BACKLOG_ALERT_S = 600
"""A backlog whose oldest event waited longer than this raises `outbox_backlog` (once)."""

AppStatus = Callable[[], dict[str, Any]]
"""The app's part of telemetry: `printer`, `card_reader`, `buttons` and anything it adds."""


def telemetry_payload(
    cfg: DeviceConfig, outbox: Outbox, started: float, app: AppStatus | None = None
) -> dict[str, Any]:
    st = outbox.stats()
    body: dict[str, Any] = {
        "v": 1,
        "ts": now_iso(),
        "uptime_s": round(time.monotonic() - started, 1),
        "outbox_depth": st.waiting,
        "oldest_pending_s": st.oldest_waiting_s,
        "printer": None,
        "card_reader": None,
        "buttons": None,
        "clock_synced": clock_synced(),
        "epoch": st.epoch,
    }
    if cfg.mqtt.cert_file:
        body["cert_days_left"] = cert_days_left(cfg.mqtt.cert_file)
    if app is not None:
        try:
            body.update(app())
        except Exception:
            log.exception("telemetry: the app's status callback failed")
    return body


class BacklogWatch:
    """Raises one `outbox_backlog` warning per backlog, on the connect that can send it."""

    def __init__(self, outbox: Outbox, threshold_s: float = BACKLOG_ALERT_S) -> None:
        self.outbox = outbox
        self.threshold_s = threshold_s
        self._alerted = False

    def check(self) -> dict[str, Any] | None:
        """The alert's details when one is due now, else None."""
        st = self.outbox.stats()
        if st.waiting == 0:
            self._alerted = False
            return None
        age = st.oldest_waiting_s or 0.0
        if age <= self.threshold_s or self._alerted:
            return None
        self._alerted = True
        return {
            "message": f"{st.waiting} events waited up to {int(age)} s for the broker",
            "waiting": st.waiting,
            "oldest_s": int(age),
        }


CLOCK_ALERT_AFTER_S = 600.0
"""A clock not NTP-synchronised for this long raises one `clock` warning. NTP normally syncs a
few seconds to a minute after boot; a Pi has no real-time clock, so until then (or for good,
when it cannot reach the hospital's NTP server) every event's time may be wrong."""


class ClockWatch:
    """Raises one `clock` warning per spell without NTP sync, and an `info` when it ends."""

    def __init__(
        self,
        started: float,
        after_s: float = CLOCK_ALERT_AFTER_S,
        synced: Callable[[], bool] = clock_synced,
    ) -> None:
        self.after_s = after_s
        self._synced = synced
        self._unsynced_since: float | None = started
        self._alerted = False

    def check(self, now: float) -> tuple[str, str, dict[str, Any]] | None:
        """(severity, message, details) of the `clock` alert due at monotonic `now`, or None."""
        if self._synced():
            self._unsynced_since = None
            if self._alerted:
                self._alerted = False
                return "info", "the system clock is NTP-synchronised again", {"synced": True}
            return None
        if self._unsynced_since is None:
            self._unsynced_since = now
        waited = now - self._unsynced_since
        if self._alerted or waited < self.after_s:
            return None
        self._alerted = True
        message = (
            f"the system clock has not been NTP-synchronised for {int(waited)} s: event times "
            "may be wrong (a Pi has no real-time clock); check that the device reaches the "
            "hospital's NTP server (`timedatectl`, `careterm doctor`)"
        )
        return "warning", message, {"synced": False, "unsynced_s": int(waited)}
