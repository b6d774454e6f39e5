"""The one call apps use to report something: `Uplink.record()` returns once the event is durable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from terminal.config import DeviceConfig
from terminal.envelope import alert_data, build_envelope, dumps, uuid7
from terminal.mqtt_link import CommandHandler, LinkOptions, MessageHandler, MqttLink
from terminal.outbox import Outbox, StorageError, StoredEvent, outbox_path

log = logging.getLogger("careterm.uplink")

STORAGE_ALERT_EVERY_S = 60.0


class Uplink:
    """Outbox plus MQTT link for one device."""

    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        subscriptions: dict[str, MessageHandler] | None = None,
        on_command: CommandHandler | None = None,
        telemetry: Callable[[], dict[str, Any]] | None = None,
        options: LinkOptions | None = None,
        max_pages: int | None = None,
    ) -> None:
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(
            outbox_path(cfg.data_dir),
            device=cfg.device.id,
            site=cfg.device.site,
            topic_root=cfg.mqtt.topic_root,
            max_pages=max_pages,
        )
        self.link = MqttLink(
            cfg,
            self.outbox,
            subscriptions=subscriptions,
            on_command=on_command,
            telemetry=telemetry,
            options=options,
        )
        self._storage_lock = threading.Lock()
        self._storage_failed = 0
        self._storage_alert_at = 0.0

    def start(self) -> None:
        self.link.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.link.stop(timeout)
        self.outbox.close()

    def record(self, etype: str, data: dict[str, Any], *, alert_kind: str = "") -> StoredEvent:
        """Store the event durably (raises StorageError if it cannot) and wake the link."""
        try:
            ev = self.outbox.store(etype, data, alert_kind=alert_kind)
        except StorageError as e:
            self._storage_failure(str(e), etype)
            raise
        self.link.notify()
        self._storage_recovered()
        return ev

    def alert(self, kind: str, severity: str, message: str, **details: Any) -> StoredEvent:
        return self.record("alert", alert_data(kind, severity, message, **details), alert_kind=kind)

    def reply(
        self, cid: str, ok: bool, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        self.link.reply(cid, ok, result, error)

    # -- storage faults ---------------------------------------------------------------------

    def _storage_failure(self, why: str, etype: str) -> None:
        log.error("storage: a %s event could not be stored: %s", etype, why)
        with self._storage_lock:
            self._storage_failed += 1
            now = time.monotonic()
            if now - self._storage_alert_at < STORAGE_ALERT_EVERY_S and self._storage_alert_at:
                return
            self._storage_alert_at = now
            failed = self._storage_failed
        # The disk refuses writes, so this alert cannot be an outbox event: it is published
        # straight away with `seq: null` (outside the sequence) and `durable: false`.
        data = alert_data(
            "storage",
            "critical",
            "the device cannot store events: check the disk (full, read-only or failing)",
            error=why.split(": ", 1)[-1],
            failed_events=failed,
            durable=False,
        )
        env = build_envelope(
            event_id=uuid7(),
            seq=None,
            device=self.cfg.device.id,
            site=self.cfg.device.site,
            etype="alert",
            data=data,
        )
        self.link.publish(self.cfg.topics.event("alert", "storage"), dumps(env), qos=1)

    def _storage_recovered(self) -> None:
        with self._storage_lock:
            failed, self._storage_failed = self._storage_failed, 0
            self._storage_alert_at = 0.0
        if failed:
            try:
                self.outbox.store(
                    "alert",
                    alert_data(
                        "storage",
                        "warning",
                        f"storage works again; {failed} events could not be stored while it failed",
                        failed_events=failed,
                    ),
                    alert_kind="storage",
                )
                self.link.notify()
            except StorageError:
                with self._storage_lock:
                    self._storage_failed += failed
