"""The one call apps use to report something: `Uplink.record()` returns once the event is durable.

The uplink puts together the outbox (the device's one durable queue), the MQTT link
(connection and pump), the device commands, telemetry, the backlog watch and the expiry of
old events, and routes what arrives: the site's `ack`, commands, retained documents. Every
event, the device's own alerts included, goes through `record()` into the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from terminal.config import DeviceConfig
from terminal.device_commands import CommandHandler, DeviceCommands
from terminal.envelope import alert_data, build_envelope, dumps, uuid7
from terminal.mqtt_link import LinkOptions, MessageHandler, MqttLink
from terminal.outbox import Faults, Outbox, StorageError, StoredEvent, outbox_path
from terminal.payloads import COMMANDS, Ack, PayloadError, parse
from terminal.telemetry import AppStatus, BacklogWatch, ClockWatch, telemetry_payload

log = logging.getLogger("careterm.uplink")

STORAGE_ALERT_EVERY_S = 60.0
CLOCK_CHECK_EVERY_S = 10.0
EXPIRE_EVERY_S = 600.0
SCRUB_EVERY_S = 60.0
"""At most this often, the WAL is emptied after events were deleted (Outbox.scrub)."""
LINK_COMMANDS = ("ping", "resend")


class Uplink:
    """Outbox plus MQTT link for one device."""

    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        subscriptions: dict[str, MessageHandler] | None = None,
        on_command: CommandHandler | None = None,
        app_commands: tuple[str, ...] | None = None,
        telemetry: AppStatus | None = None,
        options: LinkOptions | None = None,
        max_pages: int | None = None,
        faults: Faults | None = None,
    ) -> None:
        """`subscriptions`: retained topics and their handlers (link thread; must not block).
        `on_command`: the app's commands (`app_commands`, default every command of
        terminal.payloads.COMMANDS but `ping` and `resend`). `telemetry`: the app's status."""
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(
            outbox_path(cfg.data_dir),
            device=cfg.device.id,
            site=cfg.device.site,
            topic_root=cfg.mqtt.topic_root,
            max_pages=max_pages,
            faults=faults,
        )
        self.topics = cfg.topics
        self._subs = dict(subscriptions or {})
        self._telemetry = telemetry
        self._started = time.monotonic()
        self.opts = options or LinkOptions.from_env()
        self.link = MqttLink(
            cfg,
            self.outbox,
            on_message=self._on_message,
            subscriptions=list(self._subs),
            on_connected=self._on_connected,
            on_tick=self._on_tick,
            options=self.opts,
        )
        if app_commands is None:
            app_commands = tuple(n for n in COMMANDS if n not in LINK_COMMANDS)
        self.commands = DeviceCommands(
            self.outbox,
            lambda body: self.link.publish(self.topics.reply, body, qos=1),
            app=on_command,
            app_commands=app_commands if on_command is not None else (),
            resend_from=self.link.resend_from,
            session=lambda: self.link.session,
        )
        self.backlog = BacklogWatch(self.outbox)
        self.clock_watch = ClockWatch(self._started)
        self._next_clock = 0.0
        self._storage_lock = threading.Lock()
        self._storage_failed = 0
        self._storage_alert_at = 0.0
        self._next_expire = 0.0
        self._next_scrub = 0.0
        self._next_telemetry = time.monotonic() + min(5.0, self.opts.telemetry_interval_s)

    def start(self) -> None:
        self.link.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.link.stop(timeout)
        self.outbox.close()

    def record(self, etype: str, data: dict[str, Any], *, alert_kind: str = "") -> StoredEvent:
        """Store the event durably and wake the link. Raises StorageError when the disk refused
        it: then it is not stored, and the caller must not tell anyone it was."""
        try:
            ev = self.outbox.store(etype, data, alert_kind=alert_kind)
        except StorageError as e:
            self._storage_failure(e, etype)
            raise
        self.link.notify()
        self._storage_recovered()
        return ev

    def wait_handed(self, seq: int, timeout: float) -> bool:
        """Until the event `seq` was written to the broker's socket (MqttLink.wait_handed)."""
        return self.link.wait_handed(seq, timeout)

    def alert(self, kind: str, severity: str, message: str, **details: Any) -> StoredEvent:
        return self.record("alert", alert_data(kind, severity, message, **details), alert_kind=kind)

    # -- what arrives (link thread) -----------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.topics.ack:
            self._on_ack(payload)
        elif topic.startswith(f"{self.topics.base}/cmd/"):
            self.commands.handle(topic.rsplit("/", 1)[1], payload)
        elif topic in self._subs:
            self._subs[topic](topic, payload)

    def _on_ack(self, payload: bytes) -> None:
        if not payload:
            return  # a retained ack was cleared
        try:
            ack = parse(Ack, payload)
        except PayloadError as e:
            log.warning("ack ignored, it deletes nothing (%s): %r", e, payload[:80])
            return
        result = self.outbox.site_ack(ack.seq, ack.epoch)
        if result.applied:
            log.debug("site acked up to seq %d (%d events forgotten)", ack.seq, result.dropped)
        else:
            log.info("ack of epoch %s seq %d: %s", ack.epoch, ack.seq, result.note)
            self.link.notify()

    def _on_connected(self) -> None:
        due = self.backlog.check()
        if due is not None:
            message = due.pop("message")
            try:
                self.alert("outbox_backlog", "warning", message, **due)
            except StorageError as e:
                log.error("outbox_backlog alert not stored: %s", e)

    def _on_tick(self, now: float) -> None:
        if now >= self._next_expire:
            self._next_expire = now + EXPIRE_EVERY_S
            try:
                dropped = self.outbox.expire(self.cfg.device.retain_days)
                if dropped:
                    log.warning(
                        "outbox: forgot %d sent events the site never acked, kept %d days "
                        "on a synchronised clock",
                        dropped,
                        self.cfg.device.retain_days,
                    )
            except StorageError as e:
                log.error("outbox: expiry failed: %s", e)
        if self.outbox.scrub_due and now >= self._next_scrub:
            self._next_scrub = now + SCRUB_EVERY_S
            self.outbox.scrub()
        if now >= self._next_clock:
            self._next_clock = now + CLOCK_CHECK_EVERY_S
            self._check_clock(now)
        if now >= self._next_telemetry:
            self._next_telemetry = now + self.opts.telemetry_interval_s
            if self.link.connected.is_set():
                body = telemetry_payload(self.cfg, self.outbox, self._started, self._telemetry)
                self.link.publish(self.topics.telemetry, dumps(body), qos=0)

    def _check_clock(self, now: float) -> None:
        """SPEC 4.1: `clock` is an alert kind; raised when NTP has not synced the clock."""
        due = self.clock_watch.check(now)
        if due is None:
            return
        severity, message, details = due
        log.log(logging.INFO if severity == "info" else logging.WARNING, "clock: %s", message)
        try:
            self.alert("clock", severity, message, **details)
        except StorageError as e:
            log.error("clock alert not stored: %s", e)

    def telemetry_payload(self) -> dict[str, Any]:
        return telemetry_payload(self.cfg, self.outbox, self._started, self._telemetry)

    # -- storage faults ---------------------------------------------------------------------

    def _storage_failure(self, error: StorageError, etype: str) -> None:
        log.error("storage: a %s event was not stored: %s", etype, error)
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
            f"the device cannot store events ({error.kind}): check the disk",
            error=str(error).split(": ", 2)[-1],
            error_kind=error.kind,
            failed_events=failed,
            durable=False,
        )
        env = build_envelope(
            event_id=uuid7(),
            seq=None,
            epoch=self.outbox.epoch or None,
            device=self.cfg.device.id,
            site=self.cfg.device.site,
            etype="alert",
            data=data,
        )
        self.link.publish(self.topics.event("alert", "storage"), dumps(env), qos=1)

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
