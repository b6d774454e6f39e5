"""Shared test fixtures: a real mosquitto on a free port, pseudo-terminals, configs, subscribers."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from careterm.harness import (
    ROOT,
    Pty,
    careterm_cmd,
    careterm_env,
    run_careterm,
    write_config,
)
from careterm.localbroker import Broker, free_port, wait_for

__all__ = [
    "ROOT",
    "Broker",
    "Pty",
    "careterm_cmd",
    "free_port",
    "now_clear_of_midnight",
    "run_careterm",
    "wait_for",
]


def now_clear_of_midnight(tz: tzinfo | None = None, margin_s: float = 120.0) -> datetime:
    """The time now (aware; local time unless `tz`), never within `margin_s` of the day's end.

    Tests that write today's documents and then ask a device or tool that reads its own clock
    would fail when the day turns in between (CI runs whenever a session stops: 16:00 UTC is
    midnight at +08:00). Inside the last `margin_s` of a day this waits for the next one; no test
    takes that long."""
    now = datetime.now(tz).astimezone(tz)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = (tomorrow - now).total_seconds()
    if left < margin_s:
        time.sleep(left + 1.0)
    return datetime.now(tz).astimezone(tz)


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


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


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
