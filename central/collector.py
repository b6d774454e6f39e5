"""`site collect`: events from the broker into the database, each once, acked end to end.

One thread (the caller of `run`) owns the paho client, the database work and every publish.
Messages are received with manual acknowledgement: the broker gets its PUBACK only after the
batch holding the message is committed, and a device gets its `ack` (retained, `{"seq": N}`)
only once every event up to N is committed here. All accounting lives in the database, so
several collectors in one shared-subscription group see the same state.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from central.accounting import Accounting, Batch
from central.health import HealthBook
from central.messages import (
    BadMessage,
    Status,
    Telemetry,
    parse_event,
    parse_reply,
    parse_status,
    parse_telemetry,
    parse_topic,
)
from central.mqtt import DEFAULT_SESSION_EXPIRY_S, BrokerOptions, new_client
from terminal.envelope import dumps

log = logging.getLogger("careterm.collect")

BATCH_MAX = 500


@dataclass
class CollectOptions:
    topic_root: str = "careterm"
    site: str = "+"
    group: str = "careterm-collect"
    client_id: str = "careterm-collect"
    gap_timeout_s: float = 60.0
    ping_interval_s: float = 300.0
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    tick_s: float = 1.0


class Collector:
    def __init__(self, engine: Engine, broker: BrokerOptions, opts: CollectOptions) -> None:
        self.engine = engine
        self.broker = broker
        self.opts = opts
        self.stop_event = threading.Event()
        self.books = Accounting(
            engine,
            self._publish,
            topic_root=opts.topic_root,
            gap_timeout_s=opts.gap_timeout_s,
            ping_interval_s=opts.ping_interval_s,
        )
        self.health = HealthBook(engine)  # the site console's device health (SPEC 9.7)
        self._client: mqtt.Client | None = None
        self._connected = False
        self._batch = Batch()
        self._telemetry: list[Telemetry] = []
        self._db_failures = 0
        self._drops = 0
        self._connected_at = 0.0
        self._subscribed = False

    # -- topics ---------------------------------------------------------------------------

    def subscriptions(self) -> list[tuple[str, int]]:
        base = f"{self.opts.topic_root}/{self.opts.site}/+"
        share = f"$share/{self.opts.group}/"
        return [
            (f"{share}{base}/events/#", 1),
            (f"{share}{base}/alerts/#", 1),
            (f"{share}{base}/reply", 1),
            (f"{share}{base}/telemetry", 0),  # device health for the site console
            # Status is small and retained; shared subscriptions get no retained messages,
            # so every collector reads it directly (applying it twice is harmless).
            (f"{base}/status", 1),
        ]

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        next_tick = 0.0
        while not self.stop_event.is_set():
            if self._client is None:
                if not self._connect():
                    failures += 1
                    self.stop_event.wait(
                        min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.5, 1)
                    )
                    continue
                failures = 0
            client = self._client
            assert client is not None
            rc = client.loop(0.2)
            for _ in range(50):  # gather a batch while messages keep coming
                if rc != mqtt.MQTT_ERR_SUCCESS or len(self._batch) >= BATCH_MAX:
                    break
                before = len(self._batch)
                rc = client.loop(0.0)
                if len(self._batch) == before:
                    break
            if self._batch:
                self._commit()
            elif self._telemetry:
                self._record_health([])
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._lost(f"loop: {mqtt.error_string(rc)}")
                continue
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.opts.tick_s
                if self._connected:
                    self.books.tick()
        if self._batch:
            self._commit()
        if self._client is not None:
            try:
                self._client.disconnect()
                self._client.loop(0.5)
            except Exception:
                pass

    def stop(self) -> None:
        self.stop_event.set()

    def _connect(self) -> bool:
        client = new_client(self.broker, self.opts.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.opts.session_expiry_s
        try:
            client.connect(
                self.broker.host,
                self.broker.port,
                self.broker.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except OSError as e:
            log.warning("collect: cannot reach %s: %s", self.broker.url, e)
            return False
        self._client = client
        self._connected_at = time.monotonic()
        self._batch.mids.clear()
        self.books.acked_here.clear()
        return True

    def _lost(self, why: str) -> None:
        was_up = self._connected or self._subscribed
        if was_up:
            log.warning("collect: broker link lost (%s); reconnecting", why)
        self._connected = self._subscribed = False
        self._client = None
        self._batch.mids.clear()  # those PUBACKs belong to a dead connection: the broker resends
        # Links that drop right away (refused, or a second collector with the same client id
        # taking the session over) must not turn into a reconnect storm.
        self._drops = 0 if time.monotonic() - self._connected_at > 30 else self._drops + 1
        if was_up and self._drops == 3:
            # Mosquitto just closes the socket of a client whose id is taken over.
            log.error(
                "collect: the broker keeps dropping the link right after it is set up: "
                "is another collector using the client id %s? Give every collector its "
                "own --client-id",
                self.opts.client_id,
            )
        if self._drops:
            self.stop_event.wait(min(30.0, 0.5 * 2 ** min(self._drops, 6)))

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error(
                "collect: the broker refused the connection: %s (check the site-service "
                "certificate or credentials)",
                reason_code,
            )
            return
        self._connected = True
        log.info(
            "collect: connected to %s as %s (session kept: %s)",
            self.broker.url,
            self.opts.client_id,
            flags.session_present,
        )
        client.subscribe(self.subscriptions())

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        bad = [str(rc) for rc in reason_codes if rc.is_failure]
        if bad:
            log.error(
                "collect: the broker refused subscriptions: %s (check the ACL of the "
                "site-service identity and that the broker supports MQTT 5 shared "
                "subscriptions)",
                ", ".join(bad),
            )
        else:
            self._subscribed = True
            log.info("collect: subscribed (%d topics)", len(reason_codes))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected = False

    def _on_message(self, client, userdata, msg) -> None:
        b = self._batch
        if msg.qos > 0:
            b.mids.append((msg.mid, msg.qos))
        try:
            kind = parse_topic(msg.topic).kind
            if kind in ("events", "alerts"):
                b.events.append(parse_event(msg.topic, msg.payload))
            elif kind == "status":
                if msg.payload:  # an empty retained message clears the topic
                    b.statuses.append(parse_status(msg.topic, msg.payload))
            elif kind == "reply":
                b.replies.append(parse_reply(msg.topic, msg.payload))
            elif kind == "telemetry":
                self._telemetry.append(parse_telemetry(msg.topic, msg.payload))
        except BadMessage as e:
            b.rejected += 1
            self.books.rejected += 1
            log.warning("collect: ignored a message on %s: %s", msg.topic, e)

    # -- committing -----------------------------------------------------------------------

    def _commit(self) -> None:
        batch, self._batch = self._batch, Batch()
        try:
            touched = self.books.store_batch(batch)
        except OperationalError as e:  # the database is unreachable or busy: keep everything
            self._db_failures += 1
            log.error(
                "collect: database write failed (%s); %d messages will be retried",
                str(e).splitlines()[0],
                len(batch) - batch.rejected,
            )
            batch.rejected = 0
            self._batch = batch + self._batch
            self.stop_event.wait(min(10.0, 0.5 * 2 ** min(self._db_failures, 5)))
            return
        self._db_failures = 0
        client = self._client
        if client is not None and self._connected:
            for mid, qos in batch.mids:
                client.ack(mid, qos)  # only now may the broker forget them
        self.books.settle(touched)
        self._record_health(batch.statuses)

    def _record_health(self, statuses: list[Status]) -> None:
        telemetry, self._telemetry = self._telemetry, []
        self.health.record(telemetry, {s.device for s in statuses})

    def _publish(self, topic: str, body: dict[str, Any], retain: bool) -> bool:
        client = self._client
        if client is None or not self._connected:
            return False
        info = client.publish(topic, dumps(body), qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS


def run_collector(engine: Engine, broker: BrokerOptions, opts: CollectOptions) -> int:
    c = Collector(engine, broker, opts)

    def _stop(signum: int, frame: Any) -> None:
        c.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info(
        "collect: %s -> %s (group %s)",
        broker.url,
        engine.url.render_as_string(hide_password=True),
        opts.group,
    )
    c.run()
    log.info(
        "collect: stopped; %d stored, %d duplicates, %d rejected",
        c.books.stored,
        c.books.duplicates,
        c.books.rejected,
    )
    return 0
