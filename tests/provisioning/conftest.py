"""Provisioning fixtures: a site made with the real commands, and mosquitto run from its config."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.conftest import free_port, run_careterm, wait_for

SITE = "main"
ROOT = "careterm"
BASE = f"{ROOT}/{SITE}"
DEVICES = {
    "pad-w03": "rating_pad",
    "kiosk-01": "kiosk",
    "pad-a": "rating_pad",
    "pad-b": "rating_pad",
}
ROLES = ("collector", "collector-2", "alerts", "roster", "dashboard", "queue")
"""The site identities `make_site` issues (two collectors), by file stem in the broker folder."""


def unpack(bundle: Path, dest: Path) -> None:
    """Unpack a device bundle as an installer would: with tarfile's `data` filter where Python
    has it (3.11.4 and later; Debian 12's 3.11.2 has none, and its bundles are ours)."""
    with tarfile.open(bundle) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)  # noqa: S202 (the bundle was made by the test itself)


def careterm_ok(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    res = run_careterm(*args, **env)
    assert res.returncode == 0, f"careterm {' '.join(args)} failed: {res.stderr}"
    return res


@dataclass
class Site:
    """A provisioned site: CA, device bundles (also unpacked), a broker folder."""

    base: Path
    ca: Path
    broker_dir: Path
    port: int

    def bundle(self, device_id: str) -> Path:
        return self.base / f"{device_id}.tar.gz"

    def identity(self, device_id: str) -> Path:
        """The unpacked bundle: device.toml, device.crt, device.key, ca.crt, site.salt."""
        return self.base / "unpacked" / device_id


def careterm_inproc(*args: str) -> None:
    """The same command-line code as `careterm ...`, without a new interpreter per call
    (fixtures run it a dozen times; tests of the command itself use `run_careterm`)."""
    from careterm.cli import build_parser

    parsed = build_parser().parse_args(list(args))
    with contextlib.redirect_stdout(io.StringIO()):
        assert parsed.func(parsed) == 0, args


def make_site(base: Path, port: int) -> Site:
    site = Site(base=base, ca=base / "ca", broker_dir=base / "broker", port=port)
    careterm_inproc("provision", "ca", "init", "--dir", str(site.ca))
    for device_id, role in DEVICES.items():
        extra = ["--window", "W03"] if role == "rating_pad" else []
        careterm_inproc(
            "provision",
            "device",
            "--ca",
            str(site.ca),
            "--id",
            device_id,
            "--role",
            role,
            "--site",
            SITE,
            "--broker",
            f"mqtts://localhost:{port}",
            *extra,
            "--out",
            str(site.bundle(device_id)),
        )
        dest = site.identity(device_id)
        dest.mkdir(parents=True)
        unpack(site.bundle(device_id), dest)
    careterm_inproc(
        "provision",
        "broker",
        "--ca",
        str(site.ca),
        "--site",
        SITE,
        "--out",
        str(site.broker_dir),
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--collectors",
        "2",
    )
    return site


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    # Not below pytest's 0700 tmp dir: mosquitto started as root drops to its own user,
    # which must be able to reach the broker folder (as on a real site).
    base = Path(tempfile.mkdtemp(prefix="careterm-site-"))
    os.chmod(base, 0o755)
    try:
        yield make_site(base, free_port())
    finally:
        shutil.rmtree(base, ignore_errors=True)


class SiteBroker:
    """mosquitto run exactly as `provision broker` wrote it: `mosquitto -c DIR/mosquitto.conf`."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.port = site.port
        self.log = site.broker_dir / "mosquitto.log"
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._logf = open(self.log, "wb")  # noqa: SIM115 - kept open while the broker runs
        self.proc = subprocess.Popen(
            [exe, "-c", str(site.broker_dir / "mosquitto.conf")],
            stdout=self._logf,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._accepting, 10, what=f"site mosquitto on port {self.port}")

    def _accepting(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._logf.close()


@pytest.fixture(scope="module")
def site_broker(site: Site) -> Iterator[SiteBroker]:
    b = SiteBroker(site)
    yield b
    b.stop()


class Peer:
    """A TLS MQTT 5 client with a given certificate (or none); records what it receives."""

    def __init__(
        self, port: int, ca: Path, cert: Path | None, key: Path | None, client_id: str
    ) -> None:
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        self.client.tls_set(
            ca_certs=str(ca),
            certfile=str(cert) if cert else None,
            keyfile=str(key) if key else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.live: list[str] = []
        self.connack: Any = None
        self.suback: dict[int, list[Any]] = {}
        self.puback: dict[int, Any] = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.suback.__setitem__(mid, rcs)
        self.client.on_publish = lambda c, u, mid, rc, p: self.puback.__setitem__(mid, rc)
        self.disconnected = threading.Event()
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.port = port

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))
            if not msg.retain:  # sent while we were subscribed, not stored from earlier tests
                self.live.append(msg.topic)

    def connect(
        self, timeout: float = 5.0, clean_start: bool = True, session_expiry: int = 0
    ) -> bool:
        """True once the broker accepted; False when it refused or dropped the connection."""
        props = None
        if session_expiry:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry
        try:
            self.client.connect(
                "localhost", self.port, keepalive=10, clean_start=clean_start, properties=props
            )
        except (OSError, ssl.SSLError):
            return False
        self.client.loop_start()
        wait_for(
            lambda: self.connack is not None or self.disconnected.is_set(),
            timeout,
            what="CONNACK or a dropped connection",
        )
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> list[Any]:
        _, mid = self.client.subscribe(topic, qos=1)
        wait_for(lambda: mid in self.suback, 5, what=f"SUBACK for {topic}")
        return self.suback[mid]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_for(lambda: info.mid in self.puback, 5, what=f"PUBACK for {topic}")
        return self.puback[info.mid]

    def received(self, topic: str | None = None) -> list[tuple[str, bytes]]:
        with self.lock:
            return [m for m in self.messages if topic is None or m[0] == topic]

    def live_topics(self) -> list[str]:
        with self.lock:
            return list(self.live)

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


@pytest.fixture
def peers(site: Site, site_broker: SiteBroker) -> Iterator[Any]:
    made: list[Peer] = []

    def make(
        name: str,
        client_id: str | None = None,
        *,
        cert: Path | None = None,
        key: Path | None = None,
        connect: bool = True,
    ) -> Peer:
        if name in ROLES:
            cert, key = site.broker_dir / f"{name}.crt", site.broker_dir / f"{name}.key"
        elif name in DEVICES:
            cert, key = site.identity(name) / "device.crt", site.identity(name) / "device.key"
        p = Peer(site.port, site.broker_dir / "ca.crt", cert, key, client_id or name)
        made.append(p)
        if connect:
            assert p.connect(), f"{name} could not connect: {site_broker.log.read_text()}"
        return p

    yield make
    for p in made:
        try:
            p.close()
        except Exception:
            pass


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    """A new site CA made by `careterm provision ca init` (its folder)."""
    assert run_careterm("provision", "ca", "init", "--dir", str(tmp_path / "ca")).returncode == 0
    return tmp_path / "ca"
