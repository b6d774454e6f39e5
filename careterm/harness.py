"""Driving careterm from outside, for the tests and the benchmarks: a pseudo-terminal standing in
for a serial device, a device configuration, `careterm` as a child process, and an independent
MQTT subscriber watching what reaches the broker."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
"""The repository (careterm is installed editable by scripts/bootstrap)."""


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
        r, _, _ = select.select([self.master], [], [], timeout)
        return os.read(self.master, n) if r else b""

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def write_config(
    path: Path,
    *,
    device_id: str = "pad-w03",
    role: str = "rating_pad",
    site: str = "main",
    data_dir: Path,
    broker_url: str = "mqtt://127.0.0.1:1",
    extra: str = "",
    window_id: str = "W03",
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
id = "{window_id}"
name = "收费处 3号窗口"
{extra}
""",
        encoding="utf-8",
    )
    return path


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


def subscribed_client(
    port: int,
    topics: str | list[str],
    client_id: str,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None],
    *,
    prepare: Callable[[mqtt.Client], None] | None = None,
    timeout: float = 10.0,
) -> mqtt.Client:
    """A paho MQTT v5 client of the broker on 127.0.0.1:`port`, subscribed at QoS 1 to `topics`
    (again on every reconnect), its network thread running; `prepare` sets it up further
    before it connects. Raises RuntimeError when no SUBACK came within `timeout`."""
    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    wanted = [(t, 1) for t in ([topics] if isinstance(topics, str) else topics)]
    ready = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(wanted)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = on_message
    if prepare is not None:
        prepare(c)
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(timeout):
        c.loop_stop()
        raise RuntimeError(f"{client_id}: no SUBACK for {topics} within {timeout:.0f} s")
    return c
