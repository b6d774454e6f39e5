"""Shared test fixtures: a real mosquitto on a free port, pseudo-terminals, configs, subscribers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    pred: Callable[[], Any], timeout: float = 10.0, every: float = 0.02, what: str = "condition"
) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Broker:
    """A real mosquitto the test owns: it can be killed and restarted on the same port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistence: bool = False,
        extra_conf: str = "",
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
            f"log_dest file {self.dir}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        self.conf.write_text("\n".join(lines) + "\n" + self.extra_conf)

    def start(self) -> Broker:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.write_conf()
        self.proc = subprocess.Popen(
            [exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self._accepting, 10, what=f"mosquitto on port {self.port}")
        return self

    def _accepting(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = self.dir / "mosquitto.log"
            raise RuntimeError(f"mosquitto exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    made: list[Broker] = []

    def make(**kw: Any) -> Broker:
        b = Broker(tmp_path / f"broker{len(made)}", **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


class Subscriber:
    """An independent MQTT 5 client that records what arrives (test side, paho's own thread)."""

    def __init__(self, port: int, topics: list[str], client_id: str = "") -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{os.getpid()}-{id(self)}",
            protocol=mqtt.MQTTv5,
        )
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("test subscriber could not subscribe")

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def payloads(self, suffix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            msgs = list(self.messages)
        return [json.loads(m.payload) for m in msgs if m.topic.endswith(suffix) and m.payload]

    def events(self, etype: str | None = None) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            msgs = list(self.messages)
        for m in msgs:
            if "/events/" in m.topic or "/alerts/" in m.topic:
                ev = json.loads(m.payload)
                if etype is None or ev["type"] == etype:
                    out.append(ev)
        return out

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber_factory() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topics: list[str], client_id: str = "") -> Subscriber:
        s = Subscriber(port, topics, client_id)
        made.append(s)
        return s

    yield make
    for s in made:
        try:
            s.close()
        except Exception:
            pass


class Pty:
    """A pseudo-terminal: the code under test opens `path` with pyserial; the test owns `master`."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read(self, n: int = 4096, timeout: float = 1.0) -> bytes:
        import select

        r, _, _ = select.select([self.master], [], [], timeout)
        return os.read(self.master, n) if r else b""

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def write_config(
    path: Path,
    *,
    device_id: str = "pad-w03",
    role: str = "rating_pad",
    site: str = "main",
    data_dir: Path,
    broker_url: str = "mqtt://127.0.0.1:1",
    extra: str = "",
) -> Path:
    path.write_text(
        f"""
[device]
id = "{device_id}"
role = "{role}"
site = "{site}"
data_dir = "{data_dir}"

[mqtt]
url = "{broker_url}"
keepalive_s = 5

[window]
id = "W03"
name = "收费处 3号窗口"
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config_writer(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "device.toml", **kw: Any) -> Path:
        kw.setdefault("data_dir", tmp_path / "data")
        return write_config(tmp_path / name, **kw)

    return make


class Processes:
    """Child processes a test starts; all are killed at teardown, even when the test fails.

    A leftover device process would keep reopening its pty path, and a later test that gets
    the same /dev/pts number would lose bytes to it.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], log: Path | None = None, **env: str) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(cmd, env=careterm_env(**env), stdout=subprocess.DEVNULL, stderr=out)
        self.procs.append(p)
        return p

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


@pytest.fixture
def processes() -> Iterator[Processes]:
    ps = Processes()
    yield ps
    ps.kill_all()


def careterm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "careterm", *args]


def careterm_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("CARETERM_BACKOFF_MAX_S", "1")
    env.update(extra)
    return env


def run_careterm(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        careterm_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=careterm_env(**env),
    )
