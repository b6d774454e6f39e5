"""The headless pad as a real process: keypad on a pty, real broker, SIGKILL and SIGTERM, systemd."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import Broker, careterm_cmd, run_careterm, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

BASE = "careterm/main/pad-w03"
KEYS = b"1234"


def pad_config(config_writer, broker: Broker, pty_path: str) -> Path:
    return config_writer(
        broker_url=broker.url,
        extra=f"""
[rating]
mode = "free"
cooldown_s = 5
debounce_ms = 80

[buttons]
driver = "serial"
device = "{pty_path}"
baudrate = 9600
""",
    )


@pytest.fixture
def start_pad(processes):
    def start(cfg: Path, **env: str) -> subprocess.Popen[bytes]:
        return processes.start(
            careterm_cmd("pad", "--config", str(cfg), "--headless"),
            log=cfg.with_suffix(".log"),
            **env,
        )

    return start


def keypad_open(cfg: Path, starts: int = 1) -> bool:
    """The pad logs `buttons: ok` once its port is open (pyserial flushes input on open)."""
    log = cfg.with_suffix(".log")
    return log.exists() and log.read_text().count("buttons: ok") >= starts


def outbox_stats(cfg: Path) -> dict:
    r = run_careterm("outbox", "stats", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def press(pty, n: int, gap: float = 0.03) -> None:
    for i in range(n):
        pty.write(KEYS[i % 4 : i % 4 + 1])
        time.sleep(gap)


def test_presses_become_rating_events_with_misuse_flagged(
    config_writer, broker, pty, subscriber_factory, start_pad
):
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    cfg = pad_config(config_writer, broker, pty.path)
    proc = start_pad(cfg)
    try:
        wait_for(lambda: sub.payloads("/status"), what="pad online")
        wait_for(lambda: keypad_open(cfg), what="keypad open")
        pty.write(b"4")
        wait_for(lambda: len(sub.events("rating")) == 1, what="first rating")
        time.sleep(0.2)
        pty.write(b"44")  # contact bounce: one press
        time.sleep(0.3)
        pty.write(b"x\x00\xff9")  # not keys: ignored
        pty.write(b"2")
        wait_for(lambda: len(sub.events("rating")) == 3, what="three ratings")
        time.sleep(0.3)
        evs = sub.events("rating")
        assert len(evs) == 3
        assert [e["data"]["score"] for e in evs] == [4, 4, 2]
        assert [e["data"]["misuse"] for e in evs] == [False, True, True]
        d = evs[0]["data"]
        assert d == {
            "window": "W03",
            "staff": None,
            "score": 4,
            "scale": 4,
            "label": "非常满意",
            "reason": None,
            "prompt": None,
            "misuse": False,
            "response_ms": None,
        }
        assert [e["seq"] for e in evs] == [1, 2, 3]
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
    wait_for(lambda: sub.payloads("/status")[-1]["state"] == "offline", what="offline status")
    assert sub.payloads("/status")[-1]["reason"] == "shutdown"


def test_sigkill_with_events_waiting_loses_nothing_and_seq_resumes(
    config_writer, broker_factory, pty, subscriber_factory, start_pad
):
    broker = broker_factory()  # not started: the network is down
    cfg = pad_config(config_writer, broker, pty.path)
    proc = start_pad(cfg)
    wait_for(lambda: keypad_open(cfg), what="keypad open")
    press(pty, 40)
    wait_for(lambda: outbox_stats(cfg)["last_seq"] == 40, timeout=15, what="40 stored")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert outbox_stats(cfg)["waiting_for_broker"] == 40

    broker.start()
    sub = subscriber_factory(broker.port, [f"{BASE}/events/#", f"{BASE}/alerts/#"])
    proc = start_pad(cfg)
    try:
        wait_for(lambda: len(sub.events()) >= 40, timeout=20, what="backlog delivered")
        wait_for(lambda: keypad_open(cfg, 2), what="keypad open again")
        press(pty, 10)
        wait_for(lambda: len({e["id"] for e in sub.events()}) >= 50, timeout=15, what="new presses")
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(10)
    evs = sub.events()
    seqs = sorted({e["seq"] for e in evs})
    assert seqs == list(range(1, 51)), "no seq lost, none reused"
    assert len({e["epoch"] for e in evs}) == 1
    assert len({e["id"] for e in evs}) == 50
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs), "in seq order"


def test_sigkill_mid_stream_with_the_broker_up_loses_nothing(
    config_writer, broker, pty, subscriber_factory, start_pad
):
    sub = subscriber_factory(broker.port, [f"{BASE}/events/#", f"{BASE}/alerts/#"])
    cfg = pad_config(config_writer, broker, pty.path)
    total = 0
    for rnd in range(3):
        want = rnd + 1
        proc = start_pad(cfg)
        wait_for(
            lambda want=want: (
                (cfg.parent / "data" / "outbox.sqlite").exists()
                and outbox_stats(cfg)["session"] >= want
            ),
            what="pad connected",
        )
        wait_for(lambda want=want: keypad_open(cfg, want), what="keypad open")
        press(pty, 30, gap=0.02)
        total += 30
        proc.send_signal(signal.SIGKILL)  # mid-stream: some events not yet PUBACKed
        proc.wait(5)
    stored = outbox_stats(cfg)["last_seq"]
    assert stored <= total  # a press in the kernel's buffer when killed may never be read
    proc = start_pad(cfg)
    try:
        wait_for(
            lambda: {e["seq"] for e in sub.events()} >= set(range(1, stored + 1)),
            timeout=20,
            what="every stored event delivered",
        )
    finally:
        proc.terminate()
        proc.wait(10)
    evs = sub.events()
    by_id: dict[str, int] = {}
    for e in evs:
        by_id[e["id"]] = e["seq"]
    assert sorted(by_id.values()) == list(range(1, stored + 1))
    assert len({e["epoch"] for e in evs}) == 1, "one outbox, one epoch across the kills"
    dupes = len(evs) - len(by_id)
    assert dupes >= 0  # at-least-once: repeats are allowed, consumers drop them by id


def test_sd_notify_ready_and_watchdog(config_writer, broker, pty, tmp_path, start_pad):
    sock_path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(10)
    cfg = pad_config(config_writer, broker, pty.path)
    proc = start_pad(cfg, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
    try:
        got: list[str] = []
        while not any("WATCHDOG=1" in g for g in got):
            got.append(srv.recv(4096).decode())
        assert got[0].startswith("READY=1")
        proc.terminate()
        deadline = time.monotonic() + 10
        while not any("STOPPING=1" in g for g in got) and time.monotonic() < deadline:
            got.append(srv.recv(4096).decode())
        assert any("STOPPING=1" in g for g in got)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        srv.close()
        os.unlink(sock_path)
