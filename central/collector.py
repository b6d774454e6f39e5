"""`site collect`: events from the broker into the database, each once, acked end to end.

One thread (the caller of `run`) owns the paho client, the database work and every publish.
Messages are received with manual acknowledgement and committed in batches, one transaction
each: the broker gets its PUBACK for a message only after the batch holding it is committed,
and a device gets its `ack` (retained, `{"seq": N, "epoch": E}`) only once every event of
that epoch up to N is committed here. A batch is whatever arrived while the previous one was
being committed (at most `batch_max`), so batches stay small when traffic is light and grow
under load; `receive_maximum` (MQTT 5 Receive Maximum) lets the broker have that many
messages in flight to this collector.

Topics and payloads are parsed strictly (SPEC 9.1): anything of another shape, or an
envelope that names another device or site than its topic, is refused: counted, logged once
per device, never stored and never acked to the device (the broker still gets its PUBACK:
the message is consumed, not retried).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from central.accounting import Accounting, Batch
from central.messages import Event, Refused, Reply, Status, Telemetry, parse_message
from central.mqtt import DEFAULT_SESSION_EXPIRY_S, BrokerOptions, new_client
from terminal import topics
from terminal.backoff import Backoff
from terminal.envelope import dumps

log = logging.getLogger("careterm.collect")

BATCH_MAX = 2000
RECEIVE_MAXIMUM = 4000
REFUSAL_SUMMARY_S = 600.0


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
    batch_max: int = BATCH_MAX
    receive_maximum: int = RECEIVE_MAXIMUM


def subscriptions(opts: CollectOptions) -> list[tuple[str, int]]:
    """What a collector subscribes to (topic filter, QoS); docs/reference/topics.md shows it."""
    root, site = opts.topic_root, opts.site
    share = f"$share/{opts.group}/"
    # `events/#` and `alerts/#` rather than `/+`: a topic of another shape that a broker
    # lets through is then seen, counted and logged, instead of passing unnoticed.
    base = f"{root}/{site}/+"
    return [
        (f"{share}{base}/events/#", 1),
        (f"{share}{base}/alerts/#", 1),
        (f"{share}{topics.device_filter(root, 'reply', site=site)}", 1),
        (f"{share}{topics.device_filter(root, 'telemetry', site=site)}", 1),
        # Status is small and retained; shared subscriptions get no retained messages,
        # so every collector reads it directly (applying it twice is harmless).
        (topics.device_filter(root, "status", site=site), 1),
    ]


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
        self._client: mqtt.Client | None = None
        self._connected = False
        self._batch = Batch()
        self._received = 0
        self._db_backoff = Backoff(first=0.5, cap=10.0)
        self._drops = 0
        self._connected_at = 0.0
        self._subscribed = False
        self.refused: Counter[str] = Counter()
        self._refused_from: set[tuple[str, str]] = set()
        self._refusals_logged_at = time.monotonic()

    # -- topics ---------------------------------------------------------------------------

    def subscriptions(self) -> list[tuple[str, int]]:
        return subscriptions(self.opts)

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        backoff = Backoff(first=0.5, cap=30.0)
        next_tick = 0.0
        while not self.stop_event.is_set():
            if self._client is None:
                if not self._connect():
                    self.stop_event.wait(backoff.next())
                    continue
                backoff.reset()
            client = self._client
            assert client is not None
            rc = client.loop(0.2 if not self._batch else 0.0)
            # Drain what the socket holds (one packet per read) up to a batch.
            while rc == mqtt.MQTT_ERR_SUCCESS and len(self._batch) < self.opts.batch_max:
                before = self._received
                rc = client.loop_read()
                if self._received == before:
                    break
            if self._batch:
                self._commit()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._lost(f"loop: {mqtt.error_string(rc)}")
                continue
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.opts.tick_s
                if self._connected:
                    self.books.tick()
                self._summarise_refusals(now)
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
        props.ReceiveMaximum = self.opts.receive_maximum
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
        self.books.republish = True
        return True

    def _lost(self, why: str) -> None:
        was_up = self._connected or self._subscribed
        if was_up:
            log.warning("collect: broker link lost (%s); reconnecting", why)
        self._connected = self._subscribed = False
        self._client = None
        self._batch.mids.clear()  # those PUBACKs belong to a dead connection: the broker resends
        # Links that drop right away (refused, or a second collector with the same client id
        # or certificate taking the session over) must not turn into a reconnect storm.
        self._drops = 0 if time.monotonic() - self._connected_at > 30 else self._drops + 1
        if was_up and self._drops == 3:
            # Mosquitto just closes the socket of a client whose id is taken over.
            log.error(
                "collect: the broker keeps dropping the link right after it is set up: is "
                "another collector using the client id %s, or the same certificate (the site "
                "broker makes a certificate's name its client id)? Give every collector its "
                "own certificate (provision broker --collectors N) and --client-id",
                self.opts.client_id,
            )
        if self._drops:
            self.stop_event.wait(min(30.0, 0.5 * 2 ** min(self._drops, 6)))

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error(
                "collect: the broker refused the connection: %s (check the collector "
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
                "collector identity and that the broker supports MQTT 5 shared "
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
        self._received += 1
        if msg.qos > 0:
            b.mids.append((msg.mid, msg.qos))
        try:
            m = parse_message(msg.topic, msg.payload, self.opts.topic_root)
        except Refused as e:
            self._refuse(e)
            b.rejected += 1
            return
        if isinstance(m, Event):
            b.events.append(m)
        elif isinstance(m, Status):
            b.statuses.append(m)
        elif isinstance(m, Reply):
            b.replies.append(m)
        elif isinstance(m, Telemetry):
            b.telemetry.append(m)

    def _refuse(self, e: Refused) -> None:
        self.refused[e.kind] += 1
        self.books.rejected += 1
        key = (e.device, e.kind)
        if key in self._refused_from:
            log.debug("collect: refused: %s", e)
            return
        self._refused_from.add(key)
        what = {
            "topic": "a topic of another shape",
            "mismatch": "an envelope that does not match its topic",
            "payload": "a payload that is not the contract's",
        }[e.kind]
        log.warning(
            "collect: refused %s from %s: %s (not stored, not acked; further ones from this "
            "device are counted, not logged)",
            what,
            e.device,
            e,
        )

    def _summarise_refusals(self, now: float) -> None:
        if now - self._refusals_logged_at < REFUSAL_SUMMARY_S:
            return
        self._refusals_logged_at = now
        if self.refused:
            log.warning("collect: refused so far: %s", _counts(self.refused))

    # -- committing -----------------------------------------------------------------------

    def _commit(self) -> None:
        batch, self._batch = self._batch, Batch()
        try:
            self.books.store_batch(batch)
        except OperationalError as e:  # the database is unreachable or busy: keep everything
            log.error(
                "collect: database write failed (%s); %d messages will be retried",
                str(e).splitlines()[0],
                len(batch) - batch.rejected,
            )
            batch.rejected = 0
            self._batch = batch + self._batch
            self.stop_event.wait(self._db_backoff.next())
            return
        self._db_backoff.reset()
        client = self._client
        if client is not None and self._connected:
            for mid, qos in batch.mids:
                client.ack(mid, qos)  # only now may the broker forget them

    def _publish(self, topic: str, body: dict[str, Any], retain: bool) -> bool:
        client = self._client
        if client is None or not self._connected:
            return False
        info = client.publish(topic, dumps(body), qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS


def _counts(c: Counter[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "none"


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
        "collect: stopped; %d stored, %d duplicates, %d refused (%s), %d transactions retried",
        c.books.stored,
        c.books.duplicates,
        c.books.rejected,
        _counts(c.refused),
        c.books.retries,
    )
    return 0
