"""The MQTT link: one thread owns the paho client and moves the outbox to the broker in `seq` order.

This module is the connection and the pump only: connect with back-off, the in-flight window,
PUBACKs back to the outbox, and a clean stop. What arrives (acks, commands, retained
documents) goes to one `on_message` callback; `terminal.uplink` routes it.

paho-mqtt is used as a transport only. Its in-memory queue and `MQTTMessageInfo` are not a
delivery record: a fresh paho client is made for every connection, events are published
from the outbox with our own in-flight window, PUBACKs are mapped back to `seq` by `mid`,
and whatever was in flight when a link drops is published again from the outbox.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from terminal import __version__
from terminal.backoff import Backoff
from terminal.clock import now_iso
from terminal.config import DeviceConfig
from terminal.envelope import dumps
from terminal.outbox import Outbox

log = logging.getLogger("careterm.link")

SESSION_EXPIRY_S = 86400
DEFAULT_WINDOW = 20
BACKOFF_MAX_S = 2.0
"""Reconnect attempts at least this often, so a backlog drains within ~3 s of the broker
accepting connections again (SPEC 9.3). A refused TCP connection costs the broker nothing."""
STABLE_S = 10.0
"""A connection that lasted this long resets the back-off; one lost sooner (a session taken
over by another device with the same id, a broker that refuses what it sent) is retried after
the back-off, like a failed attempt."""

MessageHandler = Callable[[str, bytes], None]
"""A message that arrived (topic, payload); called on the link thread; must not block."""
TickHandler = Callable[[float], None]
"""Called on the link thread once per loop turn with `time.monotonic()`; must be quick."""


@dataclass
class LinkOptions:
    backoff_min_s: float = 0.25
    backoff_max_s: float = BACKOFF_MAX_S
    telemetry_interval_s: float = 60.0
    window: int = DEFAULT_WINDOW
    connect_timeout_s: float = 5.0

    @classmethod
    def from_env(cls) -> LinkOptions:
        """Tuning knobs for tests and benchmarks (`CARETERM_BACKOFF_MAX_S`, ...)."""
        o = cls()
        env = os.environ
        if "CARETERM_BACKOFF_MAX_S" in env:
            o.backoff_max_s = float(env["CARETERM_BACKOFF_MAX_S"])
            o.backoff_min_s = min(o.backoff_min_s, o.backoff_max_s)
        if "CARETERM_TELEMETRY_S" in env:
            o.telemetry_interval_s = float(env["CARETERM_TELEMETRY_S"])
        if "CARETERM_WINDOW" in env:
            o.window = max(1, int(env["CARETERM_WINDOW"]))
        return o


@dataclass
class _Outgoing:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass
class LinkState:
    """Counters and the last error; whether the link is up is `MqttLink.connected` alone."""

    connects: int = 0
    attempts: int = 0
    """Connection attempts so far (each a TCP connect to the broker)."""
    longest_wait_s: float = 0.0
    """The longest back-off chosen between two attempts (never above `backoff_max_s`)."""
    last_error: str = ""
    published: int = 0
    acked: int = 0


class MqttLink:
    """Owns one MQTT connection at a time; every public method is safe from any thread."""

    def __init__(
        self,
        cfg: DeviceConfig,
        outbox: Outbox,
        *,
        on_message: MessageHandler,
        subscriptions: list[str] | None = None,
        on_connected: Callable[[], None] | None = None,
        on_tick: TickHandler | None = None,
        options: LinkOptions | None = None,
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.opts = options or LinkOptions.from_env()
        self.topics = cfg.topics
        self._subs = [self.topics.commands, self.topics.ack, *(subscriptions or [])]
        self._on_message_cb = on_message
        self._on_connected = on_connected
        self._on_tick = on_tick
        self.state = LinkState()
        self.connected = threading.Event()
        """Set while a connection is up and CONNACKed: the one connection state."""
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._outgoing: queue.Queue[_Outgoing] = queue.Queue()
        self._thread: threading.Thread | None = None
        # Connection-scoped state, touched only by the link thread.
        self._client: mqtt.Client | None = None
        self._inflight: dict[int, int] = {}
        self._queued_upto = 0
        self._epoch = outbox.epoch
        self._window = self.opts.window
        self._sent: list[int] = []
        self._resend_from: int | None = None
        self._resend_lock = threading.Lock()
        self._handed: tuple[str, int] = (outbox.epoch, 0)
        """(epoch, seq) of the newest outbox event written to the broker's socket."""
        self._handed_cv = threading.Condition()
        self.session = 0
        """The durable session counter of the current (or last) connection."""
        self._attempt_sent_connect = True
        self._status_mid: int | None = None
        """The `online` status of this connection, published right after SUBSCRIBE: until the
        broker acknowledges it, the retained `ack` may still be on its way (below)."""
        self._events_due = 0.0
        self._shutdown_mid: int | None = None
        self._connack_due = 0.0
        self._shutdown_acked = threading.Event()

    # -- public ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """New events are in the outbox."""
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish something that is not an outbox event (replies, ephemeral alerts)."""
        self._outgoing.put(_Outgoing(topic, payload, qos, retain))
        self.notify()

    def resend_from(self, first: int) -> None:
        """Publish stored events again from `first` on (after `outbox.mark_waiting`)."""
        with self._resend_lock:
            self._resend_from = (
                first if self._resend_from is None else min(self._resend_from, first)
            )
        self.notify()

    def wait_handed(self, seq: int, timeout: float) -> bool:
        """Wait until the outbox event `seq` of the current epoch was written to the broker's
        socket (True), or the link is down or `timeout` passed (False: it goes out later, as
        ever). A device whose next step costs much CPU (a new screen) lets its event go first
        on a slow processor."""
        deadline = time.monotonic() + timeout
        with self._handed_cv:
            while True:
                epoch, handed = self._handed
                if epoch == self.outbox.epoch and handed >= seq:
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or not self.connected.is_set():
                    return False
                self._handed_cv.wait(min(left, 0.05))

    def stop(self, timeout: float = 5.0) -> None:
        """Clean stop: `offline`/`shutdown` (retained) goes out before the disconnect."""
        self._stop.set()
        self.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(first=self.opts.backoff_min_s, cap=self.opts.backoff_max_s)
        up_since: float | None = None  # when the connection now (or last) up was made
        while not self._stop.is_set():
            try:
                if self._client is None:
                    if up_since is not None:
                        lasted, up_since = time.monotonic() - up_since, None
                        if lasted >= STABLE_S:
                            backoff.reset()
                        else:
                            # Dropped right after it came up: another device with this id took
                            # the session over, or the broker refuses something of ours. Wait as
                            # after a failed attempt: the two must not take turns 1,000 times a
                            # second (each turn a session number written to the outbox).
                            self._back_off(backoff, lost_after=lasted)
                            continue
                    self.state.attempts += 1
                    if self._connect():
                        up_since = time.monotonic()
                    else:
                        self._back_off(backoff)
                    continue
                self._pump(self._client)
            except Exception:  # a bug here must not kill the link thread
                log.exception("link: unexpected error; reconnecting")
                self._drop_connection("internal error")
                self._wait(1.0)  # never spin on a repeating fault
                continue
            if self._on_tick is not None:
                try:
                    self._on_tick(time.monotonic())
                except Exception:
                    log.exception("link: periodic work failed")
        self._shutdown()

    def _back_off(self, backoff: Backoff, lost_after: float | None = None) -> None:
        """Wait the back-off's next delay: after a failed attempt, or after a connection lost
        `lost_after` seconds after it was made (then said in the log, with the likely cause)."""
        delay = backoff.next()
        self.state.longest_wait_s = max(self.state.longest_wait_s, delay)
        if lost_after is not None:
            log.warning(
                "mqtt: the connection was lost %.1f s after it was made (another device with "
                "id %s connected, or the broker refuses it); next attempt in %.1f s",
                lost_after,
                self.cfg.device.id,
                delay,
            )
        self._wait(delay)

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            _wait_io([self._wake_r], [], left)
            self._drain_wake()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _status(self, state: str, reason: str | None) -> bytes:
        return dumps(
            {
                "v": 1,
                "state": state,
                "reason": reason,
                "role": self.cfg.device.role,
                "version": __version__,
                "session": self.session,
                "ts": now_iso(),
            }
        )

    def _connect(self) -> bool:
        m = self.cfg.mqtt
        if self._attempt_sent_connect or self.session == 0:
            self.session = self.outbox.next_session()
        self._attempt_sent_connect = False
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.cfg.device.id,
            protocol=mqtt.MQTTv5,
        )
        client.connect_timeout = self.opts.connect_timeout_s
        client.max_inflight_messages_set(max(self.opts.window, 20))
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.will_set(self.topics.status, self._status("offline", "lost"), qos=1, retain=True)
        if m.username:
            password = None
            if m.password_file:
                try:
                    with open(m.password_file, encoding="utf-8") as f:
                        password = f.read().strip()
                except OSError as e:
                    self.state.last_error = f"{m.password_file}: {e.strerror}"
                    log.error("mqtt.password_file %s", self.state.last_error)
                    return False
            client.username_pw_set(m.username, password)
        if m.tls:
            try:
                client.tls_set(
                    ca_certs=m.ca_file or None,
                    certfile=m.cert_file or None,
                    keyfile=m.key_file or None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ssl.SSLError, ValueError) as e:
                self.state.last_error = f"TLS setup: {e}"
                log.error(
                    "mqtt: %s (check mqtt.ca_file, cert_file, key_file)", self.state.last_error
                )
                return False
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            client.connect(m.host, m.port, m.keepalive_s, clean_start=False, properties=props)
        except (OSError, ssl.SSLError, ValueError) as e:
            if self.state.last_error != str(e):
                log.warning("mqtt: cannot reach %s:%d: %s", m.host, m.port, e)
            self.state.last_error = str(e)
            return False
        self._attempt_sent_connect = True
        self._connack_due = time.monotonic() + self.opts.connect_timeout_s
        self._client = client
        self._inflight.clear()
        self._queued_upto = 0
        self._window = self.opts.window
        return True

    def _drop_connection(self, why: str) -> None:
        client = self._client
        self._client = None
        self._inflight.clear()
        self._queued_upto = 0
        self._status_mid = None
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("mqtt: link lost (%s); events wait in the outbox", why)
        self.connected.clear()
        if client is not None:
            try:
                sock = client.socket()
                if sock is not None:
                    sock.close()
            except OSError:
                pass

    def _pump(self, client: mqtt.Client) -> None:
        """One turn: send what waits, then wait for the socket, the wake pipe or a timer."""
        self._flush_sent()
        if self.connected.is_set():
            if self._status_mid is None or time.monotonic() > self._events_due:
                self._fill_window(client)
            self._send_outgoing(client)
        sock = client.socket()
        if sock is None:
            self._drop_connection("socket closed")
            return
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            readable = [sock]
            writable: list[Any] = []
        else:
            want_write = client.want_write()
            try:
                readable, writable = _wait_io(
                    [sock, self._wake_r], [sock] if want_write else [], 1.0
                )
            except (OSError, ValueError):
                self._drop_connection("socket error")
                return
        if self._wake_r in readable:
            self._drain_wake()
        if sock in readable and client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
            self._drop_connection("read failed")
            return
        if sock in writable and client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
            self._drop_connection("write failed")
            return
        if client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
            self._drop_connection("keepalive timed out")
            return
        if not self.connected.is_set() and time.monotonic() > self._connack_due:
            # The broker took the TCP connection but never answered CONNECT: try again soon
            # rather than wait a whole keepalive.
            self.state.last_error = "no CONNACK from the broker"
            self._drop_connection("no CONNACK")
            return
        if self._client is None:
            return
        self._flush_sent()

    def _fill_window(self, client: mqtt.Client) -> None:
        if self.outbox.epoch != self._epoch:
            # A new epoch renumbered the outbox: PUBACKs still due are for old numbers.
            self._epoch = self.outbox.epoch
            self._inflight.clear()
            self._sent.clear()
            self._queued_upto = 0
        with self._resend_lock:
            first, self._resend_from = self._resend_from, None
        if first is not None:
            self._queued_upto = min(self._queued_upto, first - 1)
        room = self._window - len(self._inflight)
        while room > 0:
            events = self.outbox.waiting(after_seq=self._queued_upto, limit=room)
            if not events:
                return
            for ev in events:
                info = client.publish(ev.topic, ev.payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_QUEUE_SIZE):
                    return  # the link is going down; the outbox still has it
                self._inflight[info.mid] = ev.seq
                self._queued_upto = ev.seq
                self.state.published += 1
            with self._handed_cv:
                epoch, handed = self._handed
                if epoch != self._epoch:
                    handed = 0
                self._handed = (self._epoch, max(handed, self._queued_upto))
                self._handed_cv.notify_all()
            room = self._window - len(self._inflight)

    def _send_outgoing(self, client: mqtt.Client) -> None:
        while True:
            try:
                item = self._outgoing.get_nowait()
            except queue.Empty:
                return
            client.publish(item.topic, item.payload, qos=item.qos, retain=item.retain)

    def _flush_sent(self) -> None:
        if not self._sent:
            return
        seqs, self._sent = self._sent, []
        try:
            self.outbox.mark_sent(seqs, epoch=self._epoch)
        except Exception as e:  # the mark is an optimisation: without it we resend
            log.error("outbox: cannot record PUBACKs (%s); those events will be sent again", e)

    # -- paho callbacks (run on this thread, inside loop_read/loop_write) ------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.state.last_error = f"broker refused the connection: {reason_code}"
            log.error("mqtt: %s (check the device certificate or username)", self.state.last_error)
            self._drop_connection(str(reason_code))
            return
        recv_max = getattr(properties, "ReceiveMaximum", None)
        if recv_max:
            self._window = max(1, min(self.opts.window, int(recv_max)))
        self.state.connects += 1
        self.state.last_error = ""
        log.info(
            "mqtt: connected to %s (session %d, broker kept session: %s)",
            self.cfg.mqtt.url,
            self.session,
            flags.session_present,
        )
        client.subscribe([(t, 1) for t in self._subs])
        info = client.publish(self.topics.status, self._status("online", None), qos=1, retain=True)
        # No event goes out before the broker acknowledges this status. It handles our packets
        # in order, so by then it has sent the retained `ack` of the SUBSCRIBE before it: an ack
        # that starts a new epoch (an outbox restored from an older copy) is applied before
        # events stored since are published with seq numbers the site already has for others.
        self._status_mid = info.mid
        self._events_due = time.monotonic() + self.opts.connect_timeout_s
        self.connected.set()
        if self._on_connected is not None:
            try:
                self._on_connected()
            except Exception:
                log.exception("link: on_connected failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._client is client:
            self._drop_connection(f"disconnected: {reason_code}")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if mid == self._shutdown_mid:
            self._shutdown_acked.set()
        if mid == self._status_mid:
            self._status_mid = None
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        if reason_code is not None and getattr(reason_code, "is_failure", False):
            # Not delivered: it stays waiting (never expired) and goes out again after the next
            # reconnect or a `resend`. Marked sent, expiry would forget it after retain_days.
            log.error(
                "mqtt: broker refused event seq %d: %s (check the broker's ACL); it stays "
                "waiting and is published again after the next reconnect",
                seq,
                reason_code,
            )
            return
        self.state.acked += 1
        self._sent.append(seq)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self._on_message_cb(msg.topic, msg.payload)
        except Exception:
            log.exception("mqtt: handling a message on %s failed", msg.topic)

    def _shutdown(self) -> None:
        client = self._client
        if client is None or not self.connected.is_set():
            self._drop_connection("stopping")
            return
        try:
            self._send_outgoing(client)
            info = client.publish(
                self.topics.status, self._status("offline", "shutdown"), qos=1, retain=True
            )
            self._shutdown_mid = info.mid
            deadline = time.monotonic() + 3.0
            while not self._shutdown_acked.is_set() and time.monotonic() < deadline:
                sock = client.socket()
                if sock is None:
                    break
                r, w = _wait_io([sock], [sock] if client.want_write() else [], 0.2)
                if w:
                    client.loop_write()
                if r:
                    client.loop_read()
            self._flush_sent()
            client.disconnect()
            client.loop_write()
        except Exception as e:
            log.warning("mqtt: unclean shutdown: %s", e)
        finally:
            self.connected.clear()
            self._client = None


def _wait_io(readers: list[Any], writers: list[Any], timeout: float) -> tuple[list[Any], list[Any]]:
    """select() without its 1,024-descriptor ceiling: poll(2) on objects with `fileno()`.

    An error or hang-up counts as readable, so paho's `loop_read` sees it and reports it.
    """
    masks: dict[int, list[Any]] = {}
    for o in readers:
        masks.setdefault(o.fileno(), [o, 0])[1] |= select.POLLIN
    for o in writers:
        masks.setdefault(o.fileno(), [o, 0])[1] |= select.POLLOUT
    poller = select.poll()
    for fd, (_o, mask) in masks.items():
        poller.register(fd, mask)
    readable: list[Any] = []
    writable: list[Any] = []
    for fd, ev in poller.poll(max(0.0, timeout) * 1000):
        o = masks[fd][0]
        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLNVAL):
            readable.append(o)
        if ev & select.POLLOUT:
            writable.append(o)
    return readable, writable
