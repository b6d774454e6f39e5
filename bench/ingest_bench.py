"""Site ingest: how fast `careterm site collect` stores a backlog, against baselines measured
in the same run on the same broker and database (issue 16, item 2).

Each scenario queues N events from D devices (envelopes as the devices build them, one outbox
epoch each) at the broker while the collectors are stopped, then starts them and times the
drain: from the first stored event to the last, with every event stored once and every
device's accounting (acked seq, no gap) checked at the end.

  collect   `careterm site collect` processes (1 or 2, one shared-subscription group)
  paho      baseline: a raw paho subscriber draining the same queue (QoS 1, auto-ack, no
            database): the ceiling of a Python MQTT consumer on this machine
  insert    baseline: multi-row INSERT of the same rows into a bare table of the same
            database, 1,000 rows per transaction: the ceiling of the database here

Run: .venv/bin/python bench/ingest_bench.py [--quick] [--json bench/results/ingest.json]
     [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--events N]
PostgreSQL scenarios are skipped (with a note) when no server answers at --pg.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from careterm.localbroker import Broker  # noqa: E402
from central.db import events, gaps, streams  # noqa: E402
from terminal.envelope import uuid7  # noqa: E402

STOPPED = re.compile(r"stopped; (?P<stored>\d+) stored, .*?, (?P<retried>\d+) transactions retried")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
EPOCH = "0123456789abcdef0123456789abcdef"


def site_broker(workdir: Path) -> Broker:
    """mosquitto on a free port with the queue limits `provision broker` writes (the later
    lines of its configuration win over the test defaults)."""
    from provisioning.broker import MAX_INFLIGHT_MESSAGES, MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES

    limits = (
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
        f"max_queued_bytes {MAX_QUEUED_BYTES}\n"
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}\n"
        "set_tcp_nodelay true\n"
    )
    return Broker(workdir / f"broker-{uuid.uuid4().hex[:6]}", extra_conf=limits).start()


def envelopes(n: int, devices: int) -> list[tuple[str, bytes]]:
    """(topic, payload) of n rating events spread over `devices` devices, seq 1.. each."""
    out = []
    seq = [0] * devices
    for i in range(n):
        d = i % devices
        seq[d] += 1
        dev = f"pad-{d:04d}"
        body = {
            "v": 1,
            "id": uuid7(),
            "seq": seq[d],
            "epoch": EPOCH,
            "device": dev,
            "site": "main",
            "type": "rating",
            "ts": "2026-11-23T09:41:12.345+08:00",
            "clock_synced": True,
            "data": {
                "window": f"W{d:03d}",
                "staff": "E1024",
                "score": 1 + i % 4,
                "scale": 4,
                "label": "满意",
                "reason": None,
                "reason_asked": False,
                "prompt": str(uuid.uuid4()),
                "ticket": f"A{i % 1000:03d}",
                "misuse": False,
                "response_ms": 2300,
            },
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        out.append((f"careterm/main/{dev}/events/rating", payload))
    return out


def client(port: int, cid: str, *, clean: bool = True, inflight: int = 20) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=cid,
        protocol=mqtt.MQTTv5,
    )
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 4000
    c.connect("127.0.0.1", port, clean_start=clean, properties=props)
    return c


def publish_all(port: int, msgs: list[tuple[str, bytes]]) -> float:
    """Publish at QoS 1, pipelined; returns seconds until every PUBACK is in."""
    c = client(port, f"bench-pub-{os.getpid()}", inflight=200)
    acked = [0]
    c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    c.loop_start()
    t0 = time.perf_counter()
    for topic, payload in msgs:
        c.publish(topic, payload, qos=1)
    while acked[0] < len(msgs):
        time.sleep(0.01)
    dt = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return dt


def paho_drain(port: int, msgs: list[tuple[str, bytes]]) -> float:
    """Baseline: a raw paho subscriber draining a queue of the same messages (msgs/s)."""
    cid = f"bench-raw-{os.getpid()}"
    group = f"$share/raw-{os.getpid()}/careterm/main/+/events/#"
    c = client(port, cid, clean=True)
    c.loop_start()
    time.sleep(0.2)
    c.subscribe(group, qos=1)
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    publish_all(port, msgs)
    got = [0, 0.0, 0.0]

    def on_message(cl: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        json.loads(m.payload)  # a consumer looks at what it gets, at the least
        if got[0] == 0:
            got[1] = time.perf_counter()
        got[0] += 1
        got[2] = time.perf_counter()

    c = client(port, cid, clean=False)
    c.on_message = on_message
    c.loop_start()
    end = time.monotonic() + 600
    while got[0] < len(msgs) and time.monotonic() < end:
        time.sleep(0.02)
    c.disconnect()
    c.loop_stop()
    if got[0] < len(msgs):
        raise RuntimeError(f"raw paho drained {got[0]} of {len(msgs)}")
    return (len(msgs) - 1) / (got[2] - got[1])


def insert_baseline(url: str, msgs: list[tuple[str, bytes]]) -> float:
    """Baseline: multi-row INSERT of the same rows into a bare table (rows/s)."""
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS bench_raw"))
        c.execute(
            text(
                "CREATE TABLE bench_raw (id VARCHAR(64) PRIMARY KEY, device VARCHAR(64), "
                "seq BIGINT, topic VARCHAR(255), payload TEXT)"
            )
        )
    rows = []
    for topic, payload in msgs:
        b = json.loads(payload)
        rows.append(
            {
                "id": b["id"],
                "device": b["device"],
                "seq": b["seq"],
                "topic": topic,
                "payload": payload.decode(),
            }
        )
    stmt = text(
        "INSERT INTO bench_raw (id, device, seq, topic, payload) VALUES (:id, :device, :seq, :topic, :payload)"
    )
    t0 = time.perf_counter()
    for i in range(0, len(rows), 1000):
        with eng.begin() as c:
            c.execute(stmt, rows[i : i + 1000])
    dt = time.perf_counter() - t0
    with eng.begin() as c:
        c.execute(text("DROP TABLE bench_raw"))
    eng.dispose()
    return len(rows) / dt


class Collectors:
    def __init__(self, broker: Broker, db: str, n: int, workdir: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        run = uuid.uuid4().hex[:6]
        self.logs = [workdir / f"collect-{run}-{i}.log" for i in range(n)]
        self.args = [
            [
                sys.executable,
                "-m",
                "careterm",
                "site",
                "collect",
                "--broker",
                broker.url,
                "--db",
                db,
                "--client-id",
                f"bench-collect-{i}",
                "--session-expiry",
                "3600",
            ]
            for i in range(n)
        ]

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for args, log in zip(self.args, self.logs, strict=True):
            f = log.open("ab")
            self.procs.append(subprocess.Popen(args, stdout=f, stderr=f, env=env))
            f.close()

    def wait_subscribed(self) -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            logs = [p.read_text() if p.exists() else "" for p in self.logs]
            if all("subscribed" in t for t in logs):
                return
            time.sleep(0.05)
        raise RuntimeError(
            "collectors did not subscribe:\n" + "\n".join(p.read_text() for p in self.logs)
        )

    def cpu_s(self) -> list[float]:
        """CPU seconds (user + system) each collector has used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        out = []
        for p in self.procs:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        return out

    def stop(self) -> list[str]:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(60)
        self.procs = []
        return [p.read_text() for p in self.logs]


def db_state(url: str) -> tuple[int, int]:
    eng = create_engine(url)
    with eng.connect() as c:
        n = c.execute(select(func.count()).select_from(events)).scalar_one()
        g = c.execute(select(func.count()).select_from(gaps)).scalar_one()
    eng.dispose()
    return n, g


def collect_run(
    broker: Broker,
    url: str,
    n_collectors: int,
    msgs: list[tuple[str, bytes]],
    devices: int,
    work: Path,
) -> dict[str, Any]:
    cols = Collectors(broker, url, n_collectors, work)
    cols.start()  # create the sessions and the shared subscription, then go away
    cols.wait_subscribed()
    cols.stop()
    publish_s = publish_all(broker.port, msgs)
    for p in cols.logs:
        p.unlink()
    cols.start()
    n = len(msgs)
    idle0 = machine_idle()
    others0 = cpu_by_command()
    samples: list[tuple[float, int]] = []
    end = time.monotonic() + 900
    count = 0
    eng = create_engine(url)
    while time.monotonic() < end:
        with eng.connect() as c:
            count = c.execute(select(func.count()).select_from(events)).scalar_one()
        samples.append((time.perf_counter(), count))
        if count >= n:
            break
        time.sleep(0.05)
    idle = machine_idle() - idle0
    others = {k: round(v - others0[k], 2) for k, v in cpu_by_command().items()}
    cpu = cols.cpu_s()
    # accounting settles with the last batch; give the acks a moment
    time.sleep(0.5)
    with eng.connect() as c:
        acked = c.execute(select(func.sum(streams.c.acked_seq))).scalar_one()
        n_streams = c.execute(select(func.count()).select_from(streams)).scalar_one()
        distinct = c.execute(select(func.count(func.distinct(events.c.id)))).scalar_one()
        n_gaps = c.execute(select(func.count()).select_from(gaps)).scalar_one()
    eng.dispose()
    logs = cols.stop()
    if count < n:
        raise RuntimeError(f"{count} of {n} events stored in time")
    # the drain rate: from the first sample with events to the last one
    first = next(i for i, (_, c) in enumerate(samples) if c > 0)
    t_first, c_first = samples[max(0, first - 1)]
    t_last, _ = samples[-1]
    rate = (n - c_first) / (t_last - t_first)
    stops = [m for log in logs for m in STOPPED.finditer(log)]
    stored = sum(int(m["stored"]) for m in stops)
    retried = sum(int(m["retried"]) for m in stops)
    return {
        "events": n,
        "devices": devices,
        "collectors": n_collectors,
        "events_per_s": round(rate, 1),
        "publish_s": round(publish_s, 2),
        "stored_once": distinct == n and count == n and stored == n,
        "accounted": acked == n and n_streams == devices and n_gaps == 0,
        "stored_reported_by_collectors": stored,
        "stored_by_each": [int(m["stored"]) for m in stops],
        "transactions_retried": retried,
        "collector_cpu_s": [round(c, 2) for c in cpu],
        "machine_idle_cpu_s": round(idle, 2),
        "server_cpu_s": others,
        "drain_s": round(t_last - t_first, 2),
        "errors_in_logs": sum(log.count(" ERROR ") + log.count("Traceback") for log in logs),
    }


def cpu_by_command(names: tuple[str, ...] = ("postgres", "mosquitto")) -> dict[str, float]:
    """CPU seconds used so far by all processes of each command name (this machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(names, 0.0)
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            head, rest = (d / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        comm = head.split("(", 1)[1]
        if comm in out:
            f = rest.split()
            out[comm] += (int(f[11]) + int(f[12])) / tick
    return out


def machine_idle() -> float:
    """Idle CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return (int(fields[3]) + int(fields[4])) / os.sysconf("SC_CLK_TCK")


def fresh_pg(admin: str) -> str | None:
    try:
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        name = f"careterm_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        return admin.rsplit("/", 1)[0] + "/" + name
    except Exception as e:
        print(
            f"ingest: no PostgreSQL at {admin} ({str(e).splitlines()[0]}): skipped", file=sys.stderr
        )
        return None


def drop_pg(admin: str, url: str) -> None:
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    eng.dispose()


def scenario(
    name: str, db_kind: str, url: str, collectors: int, n: int, devices: int, work: Path
) -> dict[str, Any]:
    print(f"ingest: {name} ...", file=sys.stderr, flush=True)
    from central.db import open_db

    open_db(url).dispose()  # the schema, as the collector would make it
    msgs = envelopes(n, devices)
    broker = site_broker(work)
    try:
        raw = paho_drain(broker.port, msgs)
    finally:
        broker.stop()
    msgs = envelopes(n, devices)  # new ids: the collector must store them all
    insert = insert_baseline(url, msgs)
    broker = site_broker(work)
    try:
        run = collect_run(broker, url, collectors, msgs, devices, work)
    finally:
        broker.stop()
    run.update(
        load_avg_1m=round(os.getloadavg()[0], 2),
        name=name,
        db=db_kind,
        raw_paho_per_s=round(raw, 1),
        raw_insert_per_s=round(insert, 1),
        ratio_to_raw_paho=round(run["events_per_s"] / raw, 3),
        ratio_to_raw_insert=round(run["events_per_s"] / insert, 3),
    )
    print(f"ingest: {name}: {json.dumps(run)}", file=sys.stderr, flush=True)
    return run


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def summarise(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the repeats (the machine is shared; loads vary)."""
    keys = (
        "events_per_s",
        "raw_paho_per_s",
        "raw_insert_per_s",
        "ratio_to_raw_paho",
        "ratio_to_raw_insert",
    )
    return {
        "name": name,
        "db": runs[0]["db"],
        "collectors": runs[0]["collectors"],
        "repeats": len(runs),
        **{k: median([r[k] for r in runs]) for k in keys},
        "events_per_s_each_run": [r["events_per_s"] for r in runs],
        "stored_once_every_run": all(r["stored_once"] for r in runs),
        "accounted_every_run": all(r["accounted"] for r in runs),
        "transactions_retried": sum(r["transactions_retried"] for r in runs),
        "errors_in_logs": sum(r["errors_in_logs"] for r in runs),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer events, one run (smoke run)")
    ap.add_argument(
        "--events", type=int, default=0, help="events per run (default 60,000; quick 6,000)"
    )
    ap.add_argument("--repeat", type=int, default=0, help="runs per scenario (default 3; quick 1)")
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--pg", default=PG_ADMIN, help="an admin URL of the PostgreSQL server to use")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    n = args.events or (6_000 if args.quick else 60_000)
    repeat = args.repeat or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="careterm-ingest-"))
    os.chmod(work, 0o777)
    runs: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    wanted = set(filter(None, args.only.split(",")))
    plan = [
        ("postgresql-1", "postgresql", 1),
        ("postgresql-2", "postgresql", 2),
        ("sqlite-1", "sqlite", 1),
    ]
    try:
        for r in range(repeat):  # scenarios interleaved, so a busy spell hits them alike
            for name, kind, cols in plan:
                if wanted and name not in wanted:
                    continue
                if kind == "postgresql":
                    url = fresh_pg(args.pg)
                    if url is None:
                        if r == 0:
                            notes.append(f"{name}: skipped, no PostgreSQL at {args.pg}")
                        continue
                    try:
                        one = scenario(name, kind, url, cols, n, args.devices, work)
                    finally:
                        drop_pg(args.pg, url)
                else:
                    url = f"sqlite:///{work}/site-{name}-{r}.db"
                    one = scenario(name, kind, url, cols, n, args.devices, work)
                runs.setdefault(name, []).append(one)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = [summarise(name, rs) for name, rs in runs.items()]
    by = {r["name"]: r for r in results}
    if "postgresql-1" in by and "postgresql-2" in by:
        notes.append(
            "two collectors / one (medians): "
            f"{by['postgresql-2']['events_per_s'] / by['postgresql-1']['events_per_s']:.2f}x"
        )
    out = {
        "benchmark": "ingest",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "events_per_run": n,
        "devices": args.devices,
        "results": results,
        "runs": runs,
        "notes": notes,
    }
    text_out = json.dumps(out, indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text_out + "\n", encoding="utf-8")
    print(text_out)
    ok = all(r["stored_once_every_run"] and r["accounted_every_run"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
