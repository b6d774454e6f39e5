"""Alert path benchmark (issue 16 part 3): key press on a pty -> `dissatisfied` alert at a
webhook, through the real processes a site runs. Goal: p99 <= 1 s, no alert lost or repeated.

  careterm   a private mosquitto; a real `careterm pad --headless` process reading a serial
             keypad on a pty (prompted mode, as at a window with a queue-calling system: the
             bench sends `cmd/prompt` with a ticket, waits longer than `min_response_ms`,
             presses the lowest score, then picks a reason); a real `careterm site collect`
             (SQLite in a temp dir, or PostgreSQL with --pg) and a real
             `careterm site alerts --db ... --webhook http://127.0.0.1:PORT/careterm`.
             Timed: the write of the key byte -> the webhook POST received by the HTTP server
             in this process.
  baseline   the same path's floor, in the same run, on the same broker and webhook server:
             raw paho QoS 1 publish of an alert envelope of the same size -> a bare paho
             subscriber that POSTs it at once (urllib, `Idempotency-Key`) -> the webhook.

Where the time goes is split per alert with timestamps from the same clock: an independent
subscriber on `alerts/#` (pad store + broker), the collector's `received_at` and the
`alert_deliveries.stored_at` of its batch (collector), and the POST (commit, the forwarder's
database poll, HTTP).

Run: .venv/bin/python bench/alert_bench.py [--quick] [--presses 60] [--pg [ADMIN_URL]]
                                           [--json out.json]
Exit 1 when the goal is missed (p99 > 1 s, an alert lost or duplicated).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import create_engine, text

from careterm.harness import Pty, careterm_cmd, careterm_env, subscribed_client, write_config
from careterm.localbroker import Broker, free_port, wait_for

GOAL_P99_S = 1.0
BASE = "careterm/main/pad-w03"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STAFF = "E1024"
# Pad timing (the pad's own rules, rating_pad/machine.py and [rating]): a press sooner than
# min_response_ms (700) after its prompt is misuse; a second press of the low-score key within
# REASON_GRACE_S (0.6 s) is a double press; a prompt during the thank-you screen waits for it.
PRESS_AFTER_PROMPT_S = 0.8
REASON_AFTER_PRESS_S = 0.7
THANKS_S = 1
FORWARDER_POLL_S = 0.2  # central.alerts.AlertOptions.poll_s (not a command-line option)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(pct(values, 50), 1),
        "p95": round(pct(values, 95), 1),
        "p99": round(pct(values, 99), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.mean(values), 1),
    }


# -- the webhook ----------------------------------------------------------------------------


class Webhook:
    """An HTTP server in this process: every POST is stamped on arrival and answered 200."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: dict[str, list[tuple[float, str, dict[str, Any]]]] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                try:
                    obj = json.loads(body)
                except ValueError:
                    obj = {}
                key = self.headers.get("Idempotency-Key") or ""
                with hook.lock:
                    hook.posts.setdefault(self.path, []).append((now, key, obj))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def got(self, path: str) -> list[tuple[float, str, dict[str, Any]]]:
        with self.lock:
            return list(self.posts.get(path, []))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- MQTT helpers ---------------------------------------------------------------------------


def client(port: int, cid: str) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    wait_for(c.is_connected, what=f"{cid} connected")
    return c


class Watcher:
    """Independent subscriber: the pad's alerts (stamped on arrival) and its command replies."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.alerts: dict[str, float] = {}  # ticket -> arrival (time.time())
        self.replies: dict[str, dict[str, Any]] = {}
        self.c = subscribed_client(
            port, [f"{BASE}/alerts/#", f"{BASE}/reply"], f"bench-watch-{os.getpid()}", self._msg
        )

    def _msg(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            body = json.loads(m.payload)
        except ValueError:
            return
        with self.lock:
            if m.topic.endswith("/reply"):
                self.replies[str(body.get("cid"))] = body
                return
            data = body.get("data") or {}
            if data.get("kind") == "dissatisfied" and data.get("ticket"):
                self.alerts.setdefault(str(data["ticket"]), now)

    def reply(self, cid: str) -> dict[str, Any] | None:
        with self.lock:
            return self.replies.get(cid)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def command(ctl: mqtt.Client, watch: Watcher, name: str, body: dict[str, Any]) -> dict[str, Any]:
    ctl.publish(f"{BASE}/cmd/{name}", json.dumps(body), qos=1)
    rep = wait_for(lambda: watch.reply(body["cid"]), timeout=10, every=0.005, what=f"{name} reply")
    if not rep.get("ok"):
        raise RuntimeError(f"cmd/{name} refused: {rep}")
    return rep


# -- PostgreSQL -----------------------------------------------------------------------------


def fresh_pg(admin: str) -> str:
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"careterm_alertbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return admin.rsplit("/", 1)[0] + "/" + name


def drop_pg(admin: str, url: str) -> None:
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    eng.dispose()


# -- the careterm path ----------------------------------------------------------------------


def spawn(args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        careterm_cmd(*args),
        env=careterm_env(CARETERM_LOG="INFO", **env),
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115 - the child process owns it
    )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def bench_careterm(
    tmp: Path, broker: Broker, hook: Webhook, db_url: str, n: int
) -> tuple[dict[str, Any], int]:
    pty = Pty()
    cfg = write_config(
        tmp / "pad.toml",
        data_dir=tmp / "pad-data",
        broker_url=broker.url,
        extra=(
            "[rating]\n"
            'mode = "prompted"\n'
            f"thanks_s = {THANKS_S}\n"
            "voice = false\n"
            f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n'
        ),
    )
    watch = Watcher(broker.port)
    ctl = client(broker.port, f"bench-queue-{os.getpid()}")
    engine = create_engine(db_url)
    procs: list[subprocess.Popen[bytes]] = []
    logs = {k: tmp / f"{k}.log" for k in ("collect", "alerts", "pad")}
    pressed: dict[str, float] = {}
    try:
        procs.append(
            spawn(["site", "collect", "--broker", broker.url, "--db", db_url], logs["collect"])
        )

        def schema() -> bool:
            try:
                with engine.connect() as c:
                    c.execute(text("SELECT count(*) FROM alert_deliveries")).scalar_one()
                return True
            except Exception:
                return False

        wait_for(schema, timeout=30, every=0.1, what="the collector's schema")
        procs.append(
            spawn(
                ["site", "alerts", "--db", db_url, "--webhook", hook.url("/careterm")],
                logs["alerts"],
            )
        )
        # The product's own back-off cap, not the harness's 1 s for tests.
        procs.append(
            spawn(
                ["pad", "--config", str(cfg), "--headless"],
                logs["pad"],
                CARETERM_BACKOFF_MAX_S="2",
            )
        )
        # The pad is up and subscribed when it answers a ping (one sent earlier is lost).
        for k in range(60):
            ctl.publish(f"{BASE}/cmd/ping", json.dumps({"cid": f"bench-ping-{k}"}), qos=1)
            time.sleep(0.5)
            if watch.reply(f"bench-ping-{k}"):
                break
        else:
            raise RuntimeError(f"the pad never answered a ping; see {logs['pad']}")
        time.sleep(1.0)  # the keypad opens its port on its own thread
        command(ctl, watch, "staff", {"cid": "bench-sign-in", "action": "sign_in", "staff": STAFF})

        # The collector is up when the sign-in event is stored.
        def signed_in() -> int:
            with engine.connect() as c:
                return c.execute(
                    text("SELECT count(*) FROM events WHERE type = 'staff'")
                ).scalar_one()

        wait_for(
            signed_in,
            timeout=30,
            every=0.1,
            what="the collector storing the sign-in",
        )
        rng = random.Random(16)
        for i in range(n):
            ticket = f"A{i:04d}"
            command(ctl, watch, "prompt", {"cid": f"bench-prompt-{i}", "ticket": ticket})
            # A random extra wait, so the presses fall at every phase of the forwarder's poll.
            time.sleep(PRESS_AFTER_PROMPT_S + rng.uniform(0, FORWARDER_POLL_S))
            pressed[ticket] = time.time()
            pty.write(b"1")  # the lowest score: a counted rating and a `dissatisfied` alert
            time.sleep(REASON_AFTER_PRESS_S)
            pty.write(b"2")  # reason 2 on the reason screen
            time.sleep(THANKS_S + 0.15)  # the thank-you screen ends; the next prompt opens at once

        def all_in() -> bool:
            keys = {b.get("event", {}).get("data", {}).get("ticket") for _, _, b in got()}
            return set(pressed) <= keys

        def got() -> list[tuple[float, str, dict[str, Any]]]:
            return [p for p in hook.got("/careterm") if p[2].get("kind") == "dissatisfied"]

        try:
            wait_for(all_in, timeout=30, every=0.05, what="every alert at the webhook")
        except AssertionError:
            pass  # counted as lost below
        time.sleep(1.0)  # a late duplicate would show here
        posts = got()
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT d.event_id, e.received_at, d.stored_at, d.delivered_at "
                    "FROM alert_deliveries d JOIN events e ON e.id = d.event_id"
                )
            ).all()
    finally:
        stop(procs)
        engine.dispose()
        ctl.loop_stop()
        ctl.disconnect()
        watch.close()
        pty.close()
    db = {r[0]: (r[1], r[2], r[3]) for r in rows}
    by_ticket: dict[str, list[tuple[float, str]]] = {}
    other_kinds = [p[2].get("kind") for p in hook.got("/careterm") if p not in posts]
    for t, key, body in posts:
        ticket = str(body.get("event", {}).get("data", {}).get("ticket"))
        by_ticket.setdefault(ticket, []).append((t, key))
    total, to_broker, collector, forward = [], [], [], []
    lost, dup_posts, keys_seen = [], 0, set()
    for ticket, t_press in pressed.items():
        got_t = by_ticket.get(ticket)
        if not got_t:
            lost.append(ticket)
            continue
        ids = {k for _, k in got_t}
        dup_posts += len(got_t) - 1
        keys_seen |= ids
        t_hook = min(t for t, _ in got_t)
        total.append((t_hook - t_press) * 1000)
        eid = next(iter(ids))
        t_sub = watch.alerts.get(ticket)
        if t_sub is not None:
            to_broker.append((t_sub - t_press) * 1000)
        if eid in db and t_sub is not None:
            received_at, stored_at, _ = db[eid]
            collector.append((stored_at - t_sub) * 1000)
            forward.append((t_hook - stored_at) * 1000)
    unexpected = [k for k, v in by_ticket.items() if k not in pressed for _ in v]
    result = {
        "presses": n,
        "db": "postgresql" if db_url.startswith("postgresql") else "sqlite",
        "alerts_at_webhook": sum(len(v) for v in by_ticket.values()),
        "distinct_alert_ids": len(keys_seen),
        "lost": len(lost),
        "duplicated": dup_posts,
        "unexpected": len(unexpected),
        "other_alert_kinds": sorted({str(k) for k in other_kinds}),
        "press_to_webhook_ms": summary(total),
        "breakdown_ms": {
            "press_to_broker_subscriber (pad store + publish + broker)": summary(to_broker),
            "subscriber_to_batch_stored (collector receive + batch)": summary(collector),
            "batch_stored_to_webhook (commit + forwarder poll + HTTP)": summary(forward),
        },
        "forwarder_poll_s": FORWARDER_POLL_S,
        "samples_ms": total,
    }
    bad = len(lost) + dup_posts + len(unexpected)
    if bad:
        for k, path in logs.items():
            if path.exists():
                print(f"--- {k} log tail ---\n{path.read_text()[-2000:]}", file=sys.stderr)
    return result, bad


# -- the baseline ---------------------------------------------------------------------------


def bench_raw(broker: Broker, hook: Webhook, n: int, payload_len: int) -> dict[str, Any]:
    """publish -> bare paho subscriber -> urllib POST -> the same webhook server."""
    url = hook.url("/raw")

    def forward(c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        body = json.loads(m.payload)
        req = urllib.request.Request(
            url,
            data=json.dumps(body, ensure_ascii=False).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": body["id"]},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    fwd = subscribed_client(
        broker.port, "bench/raw-alerts/#", f"bench-raw-fwd-{os.getpid()}", forward
    )
    pub = client(broker.port, f"bench-raw-pub-{os.getpid()}")
    sent: dict[str, float] = {}
    for i in range(n):
        eid = str(uuid.uuid4())
        env = {"id": eid, "type": "alert", "data": {"kind": "dissatisfied", "n": i}}
        pad = max(0, payload_len - len(json.dumps(env)) - 10)
        env["pad"] = "x" * pad
        body = json.dumps(env).encode()
        sent[eid] = time.time()
        pub.publish("bench/raw-alerts/dissatisfied", body, qos=1)
        time.sleep(0.1)
    wait_for(lambda: len(hook.got("/raw")) >= n, timeout=30, what="raw alerts at the webhook")
    got = {k: t for t, k, _ in hook.got("/raw")}
    fwd.loop_stop()
    fwd.disconnect()
    pub.loop_stop()
    pub.disconnect()
    lat = [(got[k] - t) * 1000 for k, t in sent.items() if k in got]
    return {"n": n, "payload_bytes": payload_len, "press_to_webhook_ms": summary(lat)}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10 presses (a smoke run)")
    ap.add_argument("--presses", type=int, default=0, help="how many low-score presses (60)")
    ap.add_argument(
        "--pg",
        nargs="?",
        const=PG_ADMIN,
        default="",
        metavar="ADMIN_URL",
        help=f"site database on PostgreSQL: a fresh database made through ADMIN_URL "
        f"(default {PG_ADMIN}); without --pg, SQLite in a temp dir",
    )
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    n = args.presses or (10 if args.quick else 60)
    out: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "machine": os.uname().machine,
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "goal": {"p99_s": GOAL_P99_S, "lost": 0, "duplicated": 0},
    }
    pg_url = ""
    if args.pg:
        try:
            pg_url = fresh_pg(args.pg)
        except Exception as e:  # no server, no driver, no rights: skipped, as in ingest_bench
            note = f"skipped: no PostgreSQL at {args.pg} ({str(e).splitlines()[0]})"
            print(f"alert_bench: {note}", file=sys.stderr)
            out["skipped"] = note
            if args.json:
                Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
            return 0
    hook = Webhook()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(os.environ.get("BENCH_TMP") or d)
        tmp.mkdir(parents=True, exist_ok=True)
        broker = Broker(tmp / "broker").start()
        try:
            db_url = pg_url or f"sqlite:///{tmp / 'site.db'}"
            careterm, bad = bench_careterm(tmp, broker, hook, db_url, n)
            sizes = [
                len(json.dumps(b["event"])) for _, _, b in hook.got("/careterm") if "event" in b
            ]
            payload_len = int(statistics.median(sizes)) if sizes else 600
            raw = bench_raw(broker, hook, n, payload_len)
        finally:
            broker.stop()
            hook.close()
            if pg_url:
                drop_pg(args.pg, pg_url)
    samples = careterm.pop("samples_ms")
    out["careterm"] = careterm
    out["raw_forwarder"] = raw
    ct, rw = careterm["press_to_webhook_ms"], raw["press_to_webhook_ms"]
    if ct and rw:
        out["ratio"] = {k: round(ct[k] / rw[k], 1) for k in ("p50", "p99") if rw[k] > 0}
    p99_s = ct["p99"] / 1000 if ct else float("inf")
    out["met"] = bool(ct) and p99_s <= GOAL_P99_S and bad == 0
    out["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out["samples_ms"] = [round(s, 1) for s in samples]
    text_out = json.dumps(out, indent=2, ensure_ascii=False)
    print(text_out)
    if args.json:
        Path(args.json).write_text(text_out + "\n")
    if not out["met"]:
        print(
            f"alert_bench: goal missed (p99 {ct.get('p99')} ms, lost {careterm['lost']}, "
            f"duplicated {careterm['duplicated']}, unexpected {careterm['unexpected']})",
            file=sys.stderr,
        )
    return 0 if out["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
