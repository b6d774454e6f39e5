"""Reconnect benchmark (SPEC 9.3, issue 11): after a broker outage, how long from the broker
accepting connections again until the device's backlog starts draining? Goal: within 3 s.

A real `terminal.uplink.Uplink` with its default back-off, a real mosquitto killed for
`--outage` seconds while events are recorded, then restarted on the same port; the time is
measured from the moment a TCP connect to the new broker succeeds to the first backlog event
at an independent subscriber. Before the fix (30 s back-off cap) this was 21.7 s after a 30 s
outage.

Run: .venv/bin/python bench/reconnect_bench.py [--outage 30] [--rounds 3] [--json out.json]
Exit 1 when a round misses the goal.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from careterm.localbroker import Broker  # noqa: E402
from terminal.config import parse_config  # noqa: E402
from terminal.mqtt_link import LinkOptions  # noqa: E402
from terminal.uplink import Uplink  # noqa: E402

GOAL_S = 3.0
BASE = "careterm/main/pad-w03"


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def one_round(folder: Path, outage_s: float, n: int) -> dict[str, Any]:
    broker = Broker(folder / "broker").start()
    port = broker.port
    cfg = parse_config(
        {
            "device": {
                "id": "pad-w03",
                "role": "rating_pad",
                "site": "main",
                "data_dir": str(folder / f"data-{port}"),
            },
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}"},
        }
    )
    up = Uplink(cfg, options=LinkOptions(telemetry_interval_s=3600))
    up.start()
    while not up.link.connected.is_set():
        time.sleep(0.01)
    broker.kill()
    for i in range(n):
        up.record("rating", {"n": i})
    time.sleep(outage_s)
    first = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{port}")
    sub.on_message = lambda c, u, m: first.set()
    broker.start()  # returns once it accepts connections (polled every 20 ms)
    while not accepting(port):
        time.sleep(0.005)
    t0 = time.monotonic()  # the broker accepts connections again
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{BASE}/events/#", qos=1)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    first.wait(60)
    first_s = time.monotonic() - t0
    while up.outbox.stats().waiting:
        time.sleep(0.01)
    drained_s = time.monotonic() - t0
    attempts = up.link.state.attempts
    up.stop()
    sub.loop_stop()
    broker.stop()
    return {
        "outage_s": outage_s,
        "events": n,
        "first_event_s": round(first_s, 3),
        "drained_s": round(drained_s, 3),
        "connect_attempts": attempts,
        "ok": first_s <= GOAL_S,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outage", type=float, default=30.0, help="seconds the broker is down")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rounds = [one_round(Path(d), args.outage, args.events) for _ in range(args.rounds)]
    out = {
        "goal_s": GOAL_S,
        "rounds": rounds,
        "worst_first_event_s": max(r["first_event_s"] for r in rounds),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if all(r["ok"] for r in rounds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
