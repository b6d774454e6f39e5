"""Uplink benchmarks, each against a baseline measured in the same run on the same broker.

  latency   key press on a pty -> rating event at an independent subscriber (a real
            `careterm pad --headless` process) vs raw paho QoS 1 publish -> receive
  drain     backlog of 10,000 events (issue 16) stored while the broker was down -> all
            PUBACKed after it returns, vs raw paho publishing 10,000 messages of the same size
            pipelined at QoS 1; three interleaved rounds, ratio of the medians (goal >= 0.5)
  store     Outbox.store() (seq + envelope + synced commit) vs a bare synced SQLite insert
  startup   `careterm pad --headless` start -> retained `online` seen; RSS after 1,000 events

Run: .venv/bin/python bench/uplink_bench.py [--quick] [--json out.json] [--plot out.png]
Exit 1 when a goal is missed (p99 within 5x, drain >= 0.5x, online <= 2 s, RSS <= 60 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from careterm.harness import Pty, careterm_cmd, careterm_env, subscribed_client, write_config
from careterm.localbroker import Broker, wait_for

BASE = "careterm/main/pad-w03"
# Goals (BENCHMARKS.md, issue 16): exit 1 when one is missed.
LATENCY_P99_GOAL = 5.0  # key press -> event, p99 within 5x raw paho's
DRAIN_GOAL = 0.5  # backlog drain at >= 50 % of raw paho's pipelined QoS 1 rate
ONLINE_GOAL_S = 2.0
RSS_GOAL_MB = 60.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


class Receiver:
    """Independent subscriber stamping arrival times (paho's own network thread)."""

    def __init__(self, port: int, topic: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        self.c = subscribed_client(port, topic, f"bench-rx-{os.getpid()}", self._msg)

    def _msg(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        with self.lock:
            self.count += 1
            try:
                body = json.loads(m.payload)
                key = str(body.get("data", {}).get("n", body.get("seq")))
            except ValueError:
                key = m.payload.decode(errors="replace")
            self.arrivals.setdefault(key, now)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def raw_client(port: int, cid: str) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    wait_for(c.is_connected, what="raw client connected")
    return c


def bench_latency(tmp: Path, broker: Broker, n: int) -> dict[str, Any]:
    pty = Pty()
    cfg = write_config(
        tmp / "lat.toml",
        data_dir=tmp / "lat-data",
        broker_url=broker.url,
        extra=f'[rating]\nmode = "free"\ncooldown_s = 0\n'
        f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n',
    )
    rx = Receiver(broker.port, f"{BASE}/events/rating")
    proc = subprocess.Popen(
        careterm_cmd("pad", "--config", str(cfg), "--headless"),
        env=careterm_env(CARETERM_LOG="INFO"),
        stderr=open(tmp / "lat.log", "w"),  # noqa: SIM115 - the child process owns it
    )
    try:
        wait_for(lambda: (tmp / "lat-data" / "outbox.sqlite").exists(), what="pad up")
        time.sleep(1.0)
        sent: list[float] = []
        keys = b"234"
        for i in range(n):
            sent.append(time.perf_counter())
            pty.write(keys[i % 3 : i % 3 + 1])
            time.sleep(0.03)
        wait_for(lambda: rx.count >= n, timeout=30, what=f"pad events (got {rx.count})")
        with rx.lock:
            got = sorted(rx.arrivals.values())
        # Events carry seq 1..n in press order: pair the i-th arrival (by seq) with the i-th press.
        with rx.lock:
            by_seq = {int(k): v for k, v in rx.arrivals.items()}
        pad = [(by_seq[i + 1] - sent[i]) * 1000 for i in range(n)]
        assert len(got) >= n
    finally:
        proc.terminate()
        proc.wait(10)
        rx.close()
        pty.close()

    rx = Receiver(broker.port, "bench/raw")
    pub = raw_client(broker.port, "bench-raw-pub")
    sent_raw: dict[str, float] = {}
    for i in range(n):
        payload = json.dumps({"data": {"n": i}, "pad": "x" * 200}).encode()
        sent_raw[str(i)] = time.perf_counter()
        pub.publish("bench/raw", payload, qos=1)
        time.sleep(0.03)
    wait_for(lambda: rx.count >= n, timeout=30, what="raw events")
    raw = [(rx.arrivals[k] - sent_raw[k]) * 1000 for k in sent_raw]
    pub.loop_stop()
    pub.disconnect()
    rx.close()
    return {
        "n": n,
        "careterm_ms": {"p50": round(pct(pad, 50), 2), "p99": round(pct(pad, 99), 2)},
        "raw_paho_ms": {"p50": round(pct(raw, 50), 2), "p99": round(pct(raw, 99), 2)},
        "p99_ratio": round(pct(pad, 99) / pct(raw, 99), 2),
        "samples_ms": {"careterm": pad, "raw": raw},
    }


def drain_careterm(folder: Path, broker: Broker, n: int) -> tuple[float, int]:
    """`n` events stored while the broker is down; the broker comes back; seconds from the
    uplink's connect to the last PUBACK, and the envelope size."""
    from terminal.config import parse_config
    from terminal.mqtt_link import LinkOptions
    from terminal.uplink import Uplink

    broker.kill()
    cfg = parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(folder),
            },
            "mqtt": {"url": broker.url},
        }
    )
    up = Uplink(
        cfg,
        options=LinkOptions(backoff_min_s=0.05, backoff_max_s=0.05, telemetry_interval_s=3600),
    )
    data = {
        "window": "W03",
        "staff": "E1024",
        "score": 4,
        "scale": 4,
        "label": "非常满意",
        "reason": None,
        "reason_asked": False,
        "prompt": None,
        "ticket": None,
        "misuse": False,
        "response_ms": None,
    }
    for _ in range(n):
        up.outbox.store("rating", data)
    payload_len = len(up.outbox.waiting(limit=1)[0].payload)
    up.start()
    broker.start()
    wait_for(up.link.connected.is_set, timeout=20, every=0.001, what="uplink connected")
    t0 = time.perf_counter()
    # `waiting(limit=1)` reads one row through the partial index of unsent events: cheap
    # enough to poll without slowing the uplink it watches.
    wait_for(lambda: not up.outbox.waiting(limit=1), timeout=300, every=0.005, what="drained")
    careterm_s = time.perf_counter() - t0
    up.stop()
    return careterm_s, payload_len


def drain_raw(broker: Broker, n: int, payload_len: int) -> float:
    """Raw paho: `n` messages of the same size published pipelined at QoS 1; seconds until
    the last PUBACK."""
    pub = raw_client(broker.port, "bench-raw-drain")
    acked = [0]
    done = threading.Event()

    def on_pub(c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        acked[0] += 1
        if acked[0] >= n:
            done.set()

    pub.on_publish = on_pub
    body = b"x" * payload_len
    t0 = time.perf_counter()
    for _ in range(n):
        pub.publish("bench/raw-drain", body, qos=1)
    done.wait(300)
    raw_s = time.perf_counter() - t0
    pub.loop_stop()
    pub.disconnect()
    return raw_s


def bench_drain(tmp: Path, broker: Broker, n: int, rounds: int) -> dict[str, Any]:
    """Rounds interleaved (careterm, raw, careterm, raw, ...); the ratio of the medians."""
    ct: list[float] = []
    raw: list[float] = []
    payload_len = 0
    for r in range(rounds):
        s, payload_len = drain_careterm(tmp / f"drain-data-{r}", broker, n)
        ct.append(n / s)
        raw.append(n / drain_raw(broker, n, payload_len))
    ct_med, raw_med = statistics.median(ct), statistics.median(raw)
    return {
        "n": n,
        "rounds": rounds,
        "payload_bytes": payload_len,
        "careterm_per_s": round(ct_med),
        "raw_paho_per_s": round(raw_med),
        "careterm_per_s_rounds": [round(x) for x in ct],
        "raw_paho_per_s_rounds": [round(x) for x in raw],
        "ratio": round(ct_med / raw_med, 2),
        "goal_ratio": DRAIN_GOAL,
        "met": ct_med / raw_med >= DRAIN_GOAL,
    }


def bench_store(tmp: Path, n: int) -> dict[str, Any]:
    from terminal.outbox import Outbox

    ob = Outbox(tmp / "store.sqlite", device="pad-w03", site="main")
    data = {"window": "W03", "score": 4}
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        ob.store("rating", data)
        t.append((time.perf_counter() - t0) * 1000)
    db = sqlite3.connect(str(tmp / "bare.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE e(seq INTEGER PRIMARY KEY, payload BLOB)")
    blob = next(ob.iter_all()).payload
    b = []
    for _ in range(n):
        t0 = time.perf_counter()
        db.execute("INSERT INTO e(payload) VALUES (?)", (blob,))
        b.append((time.perf_counter() - t0) * 1000)
    return {
        "n": n,
        "outbox_ms": {"p50": round(pct(t, 50), 3), "p99": round(pct(t, 99), 3)},
        "bare_sqlite_ms": {"p50": round(pct(b, 50), 3), "p99": round(pct(b, 99), 3)},
        "p50_ratio": round(pct(t, 50) / pct(b, 50), 2),
    }


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bench_startup_rss(tmp: Path, broker: Broker, events: int) -> dict[str, Any]:
    pty = Pty()
    cfg = write_config(
        tmp / "rss.toml",
        device_id="pad-rss",
        data_dir=tmp / "rss-data",
        broker_url=broker.url,
        extra=f'[rating]\nmode = "free"\ncooldown_s = 0\ndebounce_ms = 0\n'
        f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n',
    )
    rx = Receiver(broker.port, "careterm/main/pad-rss/#")
    online = threading.Event()
    watch = raw_client(broker.port, "bench-status-watch")
    watch.on_message = lambda c, u, m: b'"online"' in m.payload and online.set()
    watch.subscribe("careterm/main/pad-rss/status", qos=1)
    time.sleep(0.2)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        careterm_cmd("pad", "--config", str(cfg), "--headless"),
        env=careterm_env(CARETERM_LOG="INFO"),
        stderr=open(tmp / "rss.log", "w"),  # noqa: SIM115 - the child process owns it
    )
    try:
        online.wait(20)
        online_s = time.perf_counter() - t0
        time.sleep(1.0)  # the keypad opens its port on its own thread; earlier bytes are flushed
        rss_start = rss_kb(proc.pid)
        for i in range(events):
            pty.write(b"234"[i % 3 : i % 3 + 1])
            time.sleep(0.004)
        wait_for(lambda: rx.count >= events + 1, timeout=60, what=f"events (got {rx.count})")
        time.sleep(0.5)
        rss_end = rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        rx.close()
        pty.close()
        watch.loop_stop()
        watch.disconnect()
    return {
        "start_to_online_s": round(online_s, 3),
        "rss_after_start_mb": round(rss_start / 1024, 1),
        f"rss_after_{events}_events_mb": round(rss_end / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write a PNG of the latency distributions here")
    args = ap.parse_args()
    n_lat, n_store = (60, 300) if args.quick else (400, 2000)
    # Issue 16: 10,000 backlogged events; three interleaved rounds against raw paho.
    n_drain, drain_rounds = (2000, 1) if args.quick else (10_000, 3)
    out: dict[str, Any] = {
        "machine": os.uname().machine,
        "cpus": os.cpu_count(),
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(os.environ.get("BENCH_TMP") or d)
        tmp.mkdir(parents=True, exist_ok=True)
        broker = Broker(tmp / "broker").start()
        try:
            out["latency"] = bench_latency(tmp, broker, n_lat)
            out["drain"] = bench_drain(tmp, broker, n_drain, drain_rounds)
            out["store"] = bench_store(tmp, n_store)
            out["startup_rss"] = bench_startup_rss(tmp, broker, 1000)
        finally:
            broker.stop()
    samples = out["latency"].pop("samples_ms")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.hist(samples["raw"], bins=40, alpha=0.6, label="raw paho publish -> receive")
        ax.hist(samples["careterm"], bins=40, alpha=0.6, label="key press on pty -> event")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("count")
        ax.set_title(f"End-to-end latency, same broker, n={out['latency']['n']}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
    out["latency"]["careterm_mean_ms"] = round(statistics.mean(samples["careterm"]), 2)
    su = out["startup_rss"]
    rss_end = max(
        v for k, v in su.items() if k.startswith("rss_after_") and k != "rss_after_start_mb"
    )
    goals = {
        "latency_p99_ratio_max": [
            LATENCY_P99_GOAL,
            out["latency"]["p99_ratio"] <= LATENCY_P99_GOAL,
        ],
        "drain_ratio_min": [DRAIN_GOAL, out["drain"]["met"]],
        "start_to_online_s_max": [ONLINE_GOAL_S, su["start_to_online_s"] <= ONLINE_GOAL_S],
        "rss_mb_max": [RSS_GOAL_MB, max(su["rss_after_start_mb"], rss_end) <= RSS_GOAL_MB],
    }
    out["goals"] = {k: {"goal": g, "met": m} for k, (g, m) in goals.items()}
    out["met"] = all(m for _, m in goals.values())
    text = json.dumps(out, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if not out["met"]:
        missed = [k for k, (_, m) in goals.items() if not m]
        print(f"uplink_bench: goal missed: {missed}", file=sys.stderr)
    return 0 if out["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
