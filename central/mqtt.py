"""Broker connection options shared by the site tools (URL, TLS files, credentials, topic root)."""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from terminal.cliutil import UsageError

DEFAULT_TOPIC_ROOT = "careterm"
# How long the broker keeps a stopped site tool's session. Long enough for a restart; short
# because Mosquitto keeps sending a shared-subscription share to an offline member's
# session until it expires (what it queued there comes back through `resend` anyway).
DEFAULT_SESSION_EXPIRY_S = 120


@dataclass(frozen=True)
class BrokerOptions:
    url: str
    host: str
    port: int
    tls: bool
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    username: str = ""
    password: str | None = None
    keepalive_s: int = 30


def add_broker_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--broker", required=required, metavar="URL", help="mqtt://host:1883 or mqtts://host:8883"
    )
    p.add_argument("--cafile", default="", metavar="F", help="mqtts: CA that signed the broker")
    p.add_argument(
        "--cert",
        default="",
        metavar="F",
        help="mqtts: this tool's certificate from `provision broker` (collector.crt, roster.crt)",
    )
    p.add_argument("--key", default="", metavar="F", help="mqtts: its key (collector.key, ...)")
    p.add_argument("--username", default="", help="broker username, if the broker uses passwords")
    p.add_argument("--password-file", default="", metavar="F", help="file holding the password")
    p.add_argument(
        "--topic-root",
        default=DEFAULT_TOPIC_ROOT,
        metavar="R",
        help=f"topic root (default {DEFAULT_TOPIC_ROOT!r}, as [mqtt].topic_root)",
    )


def broker_options(args: argparse.Namespace) -> BrokerOptions:
    u = urlparse(args.broker)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise UsageError(f"--broker {args.broker!r}: use mqtt://host:1883 or mqtts://host:8883")
    tls = u.scheme == "mqtts"
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise UsageError(f"--broker {args.broker!r}: the port is not a number") from None
    password = None
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as f:
                password = f.read().strip()
        except OSError as e:
            raise UsageError(f"--password-file {args.password_file}: {e.strerror}") from None
    return BrokerOptions(
        args.broker,
        u.hostname,
        port,
        tls,
        args.cafile,
        args.cert,
        args.key,
        args.username,
        password,
    )


def new_client(opts: BrokerOptions, client_id: str, *, manual_ack: bool = False):
    """A paho MQTT 5 client configured from the options (not yet connected)."""

    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if opts.username:
        client.username_pw_set(opts.username, opts.password)
    if opts.tls:
        try:
            client.tls_set(
                ca_certs=opts.cafile or None,
                certfile=opts.certfile or None,
                keyfile=opts.keyfile or None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError, ValueError) as e:
            raise UsageError(f"TLS setup failed: {e} (check --cafile, --cert, --key)") from None
    return client


def default_client_id(group: str) -> str:
    """`<group>-<host>`: stable across restarts, so the broker session is picked up again."""
    host = socket.gethostname().split(".")[0].lower() or "site"
    return f"{group}-{host}"[:64]


def publish_retained(
    opts: BrokerOptions,
    topic: str,
    payload: bytes,
    timeout: float = 10.0,
    expiry_s: int | None = None,
) -> None:
    """Publish one retained QoS 1 message and wait for the broker's PUBACK; with `expiry_s`,
    the broker drops it (and no longer keeps it) that many seconds later (MQTT 5)."""

    client = new_client(opts, f"careterm-publish-{os.getpid()}")
    up = threading.Event()
    refused: list[str] = []

    def on_connect(c, u, flags, rc, props) -> None:
        if rc.is_failure:
            refused.append(str(rc))
        up.set()

    client.on_connect = on_connect
    try:
        client.connect(opts.host, opts.port, opts.keepalive_s)
    except (OSError, ssl.SSLError) as e:
        raise RuntimeError(f"cannot reach the broker {opts.url}: {e}") from None
    client.loop_start()
    try:
        if not up.wait(timeout):
            raise RuntimeError(f"the broker {opts.url} did not answer the connection")
        if refused:
            raise RuntimeError(f"the broker {opts.url} refused the connection: {refused[0]}")
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry_s
        info = client.publish(topic, payload, qos=1, retain=True, properties=props)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise RuntimeError(
                f"the broker {opts.url} did not acknowledge {topic} within {timeout:g} s"
            )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publishing {topic} failed: {mqtt.error_string(info.rc)}")
    finally:
        client.disconnect()
        client.loop_stop()
