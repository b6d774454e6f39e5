"""`site alerts`: device alerts -> a webhook (SMS gateway, chat bot), through a durable queue.

The MQTT thread stores each alert in a small SQLite queue (deduplicated by event id) and only
then acknowledges it to the broker; a sender thread POSTs queued alerts oldest first and
retries each failed one with its own exponential backoff (so one alert the webhook keeps
refusing does not hold back the others), and a webhook outage or a restart loses nothing.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.messages import BadMessage, Event, parse_event
from central.mqtt import DEFAULT_SESSION_EXPIRY_S, BrokerOptions, new_client
from terminal import __version__

log = logging.getLogger("careterm.alerts")

KEEP_DELIVERED_S = 30 * 86400
HTTP_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    n         INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    body      TEXT NOT NULL,
    received  REAL NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    next_try  REAL NOT NULL,
    delivered REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts(next_try) WHERE delivered IS NULL;
"""


@dataclass
class AlertOptions:
    topic_root: str = "careterm"
    site: str = "+"
    group: str = "careterm-alerts"
    client_id: str = "careterm-alerts"
    webhook: str = ""
    queue: str = "careterm-alerts.sqlite"
    retry_min_s: float = 1.0
    retry_max_s: float = 300.0
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    staff_names: dict[str, str] = field(default_factory=dict)  # staff number -> name


class AlertQueue:
    """The durable queue; one connection per thread (SQLite connections are not shared)."""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def add(self, items: list[tuple[str, dict[str, Any]]]) -> int:
        """Queue new alerts; returns how many were new (repeats of an id are dropped)."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            new = 0
            for eid, body in items:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO alerts(id, body, received, next_try) VALUES (?,?,?,?)",
                    (eid, json.dumps(body, ensure_ascii=False), now, now),
                )
                new += cur.rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return new

    def due(self, now: float, limit: int = 20) -> list[tuple[str, str, int]]:
        return self.db.execute(
            "SELECT id, body, attempts FROM alerts WHERE delivered IS NULL AND next_try <= ? "
            "ORDER BY n LIMIT ?",
            (now, limit),
        ).fetchall()

    def next_due(self) -> float | None:
        (t,) = self.db.execute(
            "SELECT MIN(next_try) FROM alerts WHERE delivered IS NULL"
        ).fetchone()
        return t

    def delivered(self, eid: str) -> None:
        self.db.execute(
            "UPDATE alerts SET delivered=?, last_error=NULL WHERE id=?", (time.time(), eid)
        )

    def failed(self, eid: str, attempts: int, next_try: float, error: str) -> None:
        self.db.execute(
            "UPDATE alerts SET attempts=?, next_try=?, last_error=? WHERE id=?",
            (attempts, next_try, error[:300], eid),
        )

    def purge(self) -> None:
        self.db.execute(
            "DELETE FROM alerts WHERE delivered IS NOT NULL AND delivered < ?",
            (time.time() - KEEP_DELIVERED_S,),
        )

    def pending(self) -> int:
        (n,) = self.db.execute("SELECT COUNT(*) FROM alerts WHERE delivered IS NULL").fetchone()
        return n

    def close(self) -> None:
        self.db.close()


def alert_body(ev: Event, staff_names: dict[str, str] | None = None) -> dict[str, Any]:
    """What the webhook gets: the fields a supervisor needs, a ready-made text, and the event."""
    d = ev.data
    kind = ev.kind or str(d.get("kind") or "")
    body: dict[str, Any] = {
        "id": ev.id,
        "site": ev.site,
        "device": ev.device,
        "kind": kind,
        "severity": d.get("severity"),
        "message": d.get("message"),
        "ts": ev.ts,
    }
    if kind == "dissatisfied":
        for k in ("window", "staff", "score", "reason"):
            body[k] = d.get(k)
        name = (staff_names or {}).get(str(d.get("staff")))
        body["staff_name"] = name
        parts = [f"【不满意评价】窗口 {d.get('window') or '?'}"]
        if d.get("staff"):
            parts.append(f"工号 {d['staff']}" + (f" {name}" if name else ""))
        parts.append(f"评分 {d.get('score', '?')}")
        parts.append(f"原因: {d.get('reason') or '未选择'}")
        text = " ".join(parts)
    else:
        text = f"[{d.get('severity') or 'alert'}] {kind} {ev.device}: {d.get('message') or ''}"
    when = (ev.ts or "")[11:16]
    body["text"] = f"{text} {when} ({ev.device})".strip()
    body["event"] = ev.envelope
    return body


class Sender(threading.Thread):
    """POSTs queued alerts (or prints them) in order, with exponential backoff on failure."""

    def __init__(self, opts: AlertOptions) -> None:
        super().__init__(name="alert-sender", daemon=True)
        self.opts = opts
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        q = AlertQueue(self.opts.queue)
        last_purge = 0.0
        try:
            while not self.stopping.is_set():
                self.wake.clear()  # before reading the queue, so no wake-up is missed
                now = time.time()
                if now - last_purge > 3600:
                    q.purge()
                    last_purge = now
                blocked = False
                for eid, body, attempts in q.due(now):
                    if self.stopping.is_set():
                        break
                    err = self._deliver(eid, body)
                    if err is None:
                        q.delivered(eid)
                        self.sent += 1
                        continue
                    attempts += 1
                    wait = min(self.opts.retry_max_s, self.opts.retry_min_s * 2 ** (attempts - 1))
                    wait *= random.uniform(0.8, 1.0)
                    q.failed(eid, attempts, time.time() + wait, err)
                    log.warning(
                        "alerts: webhook failed for %s (attempt %d): %s; retry in %.1f s, "
                        "%d alerts waiting",
                        eid,
                        attempts,
                        err,
                        wait,
                        q.pending(),
                    )
                    blocked = True  # the webhook is probably down: stop this pass
                    break
                nxt = q.next_due()
                if nxt is None:
                    self.wake.wait(5.0)
                elif not blocked and nxt <= time.time():
                    continue  # more are due now
                else:
                    self.wake.wait(max(0.05, nxt - time.time()))
        finally:
            q.close()

    def _deliver(self, eid: str, body: str) -> str | None:
        if not self.opts.webhook:
            sys.stdout.write(body + "\n")
            sys.stdout.flush()
            return None
        req = urllib.request.Request(
            self.opts.webhook,
            data=body.encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": eid,
                "User-Agent": f"careterm-alerts/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                resp.read(65536)
                return None
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            return str(getattr(e, "reason", e))


class AlertForwarder:
    """The MQTT side: queue each alert, then acknowledge it to the broker."""

    def __init__(self, broker: BrokerOptions, opts: AlertOptions) -> None:
        self.broker = broker
        self.opts = opts
        self.stop_event = threading.Event()
        self.queue = AlertQueue(opts.queue)
        self.sender = Sender(opts)
        self._pending: list[tuple[int, int, str, dict[str, Any]]] = []
        self._connected = False

    def run(self) -> None:
        self.sender.start()
        client: mqtt.Client | None = None
        failures = 0
        try:
            while not self.stop_event.is_set():
                if client is None:
                    client = self._connect()
                    if client is None:
                        failures += 1
                        self.stop_event.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
                        continue
                    failures = 0
                rc = client.loop(0.2)
                if self._pending:
                    self._flush(client)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    log.warning(
                        "alerts: broker link lost (%s); reconnecting", mqtt.error_string(rc)
                    )
                    client, self._connected = None, False
                    self._pending.clear()  # unacknowledged: the broker delivers them again
                    self.stop_event.wait(1.0)  # no reconnect storm (e.g. a client-id clash)
        finally:
            if client is not None:
                try:
                    client.disconnect()
                    client.loop(0.5)
                except Exception:
                    pass
            self.sender.stopping.set()
            self.sender.wake.set()
            self.sender.join(HTTP_TIMEOUT_S + 2)
            self.queue.close()

    def _connect(self) -> mqtt.Client | None:
        client = new_client(self.broker, self.opts.client_id, manual_ack=True)
        client.on_connect = self._on_connect
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
            log.warning("alerts: cannot reach %s: %s", self.broker.url, e)
            return None
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("alerts: the broker refused the connection: %s", reason_code)
            return
        self._connected = True
        topic = f"$share/{self.opts.group}/{self.opts.topic_root}/{self.opts.site}/+/alerts/#"
        client.subscribe([(topic, 1)])
        log.info(
            "alerts: connected to %s, forwarding to %s",
            self.broker.url,
            self.opts.webhook or "stdout",
        )

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("alerts: the broker refused the subscription: %s", reason_codes)
        else:
            log.info("alerts: subscribed")

    def _on_message(self, client, userdata, msg) -> None:
        try:
            ev = parse_event(msg.topic, msg.payload)
            item = (ev.id, alert_body(ev, self.opts.staff_names))
        except BadMessage as e:
            log.warning("alerts: ignored a message on %s: %s", msg.topic, e)
            item = None
        self._pending.append((msg.mid, msg.qos, *(item or ("", {}))))

    def _flush(self, client: mqtt.Client) -> None:
        items = [(eid, body) for _, _, eid, body in self._pending if eid]
        try:
            new = self.queue.add(items)
        except sqlite3.Error as e:
            log.error(
                "alerts: cannot queue alerts in %s: %s (they stay with the broker)",
                self.opts.queue,
                e,
            )
            self.stop_event.wait(1.0)
            return
        for mid, qos, _, _ in self._pending:
            if qos:
                client.ack(mid, qos)
        self._pending.clear()
        if new:
            self.sender.wake.set()


def run_alerts(broker: BrokerOptions, opts: AlertOptions) -> int:
    f = AlertForwarder(broker, opts)

    def _stop(signum: int, frame: Any) -> None:
        f.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    f.run()
    return 0
