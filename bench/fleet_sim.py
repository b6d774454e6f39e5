"""Fleet simulator: many pads and kiosks on the real uplink code, one mosquitto, one collector.

Every simulated device is a real `terminal.uplink.Uplink`: its own durable SQLite outbox
(WAL, synchronous=FULL), its own MQTT link thread and its own MQTT connection (client id =
device id). Devices are spread over worker processes; a separate collector process
subscribes to every device's events and alerts, records per device the `seq`s and `id`s it
received and the end-to-end latency (the sender's `time.time()` is put in
`data["t_sent"]` right before `record()`), and publishes the retained `ack` per device
every second, as the site collector does, so the outboxes stay small.

A scenario: start a fresh broker, the collector and the workers; wait for every device to be
online; let every device emit Poisson arrivals at its mean period for `duration` seconds;
drain; compare what arrived with what each outbox numbered. `--raw` swaps the uplink for
a bare paho client per device (no outbox, no fsync): the baseline.

  python bench/fleet_sim.py --suite [--quick] --json out.json --samples samples.json
  python bench/fleet_sim.py --pads 20 --kiosks 2 --pad-period 1 --kiosk-period 1 --duration 4

Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from careterm.localbroker import Broker
from terminal.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SITE = "main"
TOPIC_ROOT = "careterm"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# A busy outpatient hour: a window serves a patient every ~3 min and the pad asks each one
# to rate (one rating per 2-4 min, mean 180 s); a lobby kiosk checks a patient in every ~30 s.
REAL_PAD_PERIOD_S = 180.0
REAL_KIOSK_PERIOD_S = 30.0
# The link thread waits with select(), which fails for descriptors >= 1024 (FD_SETSIZE), and
# each uplink holds about 6 (SQLite file, WAL, shm, wake socketpair, MQTT socket): so at most
# ~150 uplinks fit in one process. (On a real pad there is one uplink per process.)
DEVICES_PER_WORKER = 130


@dataclass
class Scenario:
    name: str
    pads: int
    kiosks: int
    pad_period_s: float
    kiosk_period_s: float
    duration_s: float
    workers: int = 0
    """0: one worker per DEVICES_PER_WORKER devices."""
    raw: bool = False
    record_threads: int = 8
    drain_timeout_s: float = 90.0
    broker_conf: str = ""
    """Extra mosquitto.conf lines (e.g. `set_tcp_nodelay true`)."""

    @property
    def devices(self) -> int:
        return self.pads + self.kiosks

    @property
    def offered_per_s(self) -> float:
        return self.pads / self.pad_period_s + self.kiosks / self.kiosk_period_s


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def device_ids(sc: Scenario) -> list[tuple[str, str]]:
    pads = [(f"pad-{i:04d}", "rating_pad") for i in range(sc.pads)]
    kiosks = [(f"kiosk-{i:03d}", "kiosk") for i in range(sc.kiosks)]
    return pads + kiosks


# -- /proc sampling --------------------------------------------------------------------------


def proc_ticks(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def proc_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def system_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


class Sampler:
    """Samples CPU ticks and RSS of named process groups once a second on its own thread."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.rss_max: dict[str, int] = {g: 0 for g in groups}
        self.rss_series: dict[str, list[int]] = {g: [] for g in groups}
        self._stop = threading.Event()
        self._marks: dict[str, tuple[float, dict[str, int], tuple[int, int]]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _ticks(self) -> dict[str, int]:
        return {g: sum(proc_ticks(p) or 0 for p in pids) for g, pids in self.groups.items()}

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for g, pids in self.groups.items():
                rss = sum(proc_rss_kb(p) for p in pids)
                self.rss_series[g].append(rss)
                self.rss_max[g] = max(self.rss_max[g], rss)

    def mark(self, name: str) -> None:
        self._marks[name] = (time.monotonic(), self._ticks(), system_ticks())

    def cpu_between(self, a: str, b: str) -> dict[str, Any]:
        t0, k0, s0 = self._marks[a]
        t1, k1, s1 = self._marks[b]
        wall = max(1e-6, t1 - t0)
        out: dict[str, Any] = {g: round(100 * (k1[g] - k0[g]) / CLK_TCK / wall, 1) for g in k0}
        out["machine_busy_pct"] = round(100 * (s1[0] - s0[0]) / max(1, s1[1] - s0[1]), 1)
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)


# -- worker process --------------------------------------------------------------------------


def pad_data(rnd: random.Random) -> dict[str, Any]:
    score = rnd.choices([1, 2, 3, 4], weights=[3, 7, 30, 60])[0]
    return {
        "window": f"W{rnd.randint(1, 40):02d}",
        "staff": f"E{rnd.randint(1000, 1999)}",
        "score": score,
        "scale": 4,
        "label": ["不满意", "基本满意", "满意", "非常满意"][score - 1],
        "reason": "等候时间长" if score == 1 else None,
        "prompt": None,
        "misuse": False,
        "response_ms": rnd.randint(800, 6000),
    }


def checkin_data(rnd: random.Random) -> dict[str, Any]:
    n = rnd.randint(1, 999)
    return {
        "appointment": f"A20261123-{n:04d}",
        "department_id": "cardio",
        "queue_no": f"B{n:03d}",
        "card_kind": "id_card",
        "token": f"{rnd.getrandbits(128):032x}",
        "timing": "on_time",
        "ticket": "printed",
        "repeat": False,
    }


class UplinkDevice:
    """One simulated device on the real uplink code."""

    def __init__(self, dev: str, role: str, port: int, data_dir: Path) -> None:
        from terminal.config import parse_config
        from terminal.uplink import Uplink

        cfg = parse_config(
            {
                "device": {"id": dev, "role": role, "site": SITE, "data_dir": str(data_dir / dev)},
                "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": 60},
            }
        )
        self.id = dev
        self.up = Uplink(cfg)
        self.up.start()

    def ready(self) -> bool:
        return self.up.link.connected.is_set()

    def emit(self, etype: str, data: dict[str, Any]) -> int:
        data["t_sent"] = time.time()
        return self.up.record(etype, data).seq

    def waiting(self) -> int:
        return self.up.outbox.stats().waiting

    def site_acked(self) -> int:
        return self.up.outbox.meta("site_acked_seq")

    def stop(self) -> None:
        self.up.stop()


class RawDevice:
    """The baseline: a bare paho client per device (its own network thread), no outbox."""

    def __init__(self, dev: str, role: str, port: int, data_dir: Path) -> None:
        import paho.mqtt.client as mqtt

        self.id = dev
        self.seq = 0
        self.acked = 0
        self.lock = threading.Lock()
        self.c = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=dev,
            protocol=mqtt.MQTTv5,
        )
        self.c.max_inflight_messages_set(20)
        self.c.on_publish = self._acked
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()

    def _acked(self, *a: Any) -> None:
        with self.lock:
            self.acked += 1

    def ready(self) -> bool:
        return self.c.is_connected()

    def emit(self, etype: str, data: dict[str, Any]) -> int:
        from terminal.envelope import build_envelope, dumps, uuid7

        with self.lock:
            self.seq += 1
            seq = self.seq
        data["t_sent"] = time.time()
        env = build_envelope(
            event_id=uuid7(), seq=seq, device=self.id, site=SITE, etype=etype, data=data
        )
        self.c.publish(Topics(TOPIC_ROOT, SITE, self.id).event(etype), dumps(env), qos=1)
        return seq

    def waiting(self) -> int:
        with self.lock:
            return self.seq - self.acked

    def site_acked(self) -> int:
        return self.seq

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def worker_main(spec: dict[str, Any]) -> int:
    """Run a slice of the fleet; talk to the orchestrator by lines on stdin/stdout."""
    raise_fd_limit()
    port, data_dir, raw = spec["port"], Path(spec["data_dir"]), spec["raw"]
    kind = RawDevice if raw else UplinkDevice
    rnd = random.Random(spec["seed"])
    devices: list[Any] = []
    t_start = time.monotonic()
    for dev, role in spec["devices"]:
        devices.append(kind(dev, role, port, data_dir))
        time.sleep(0.002)  # a fleet powers up over seconds, not in one burst
    end = time.monotonic() + 120
    while time.monotonic() < end and not all(d.ready() for d in devices):
        time.sleep(0.1)
    online = sum(d.ready() for d in devices)
    print(
        json.dumps({"ready": online, "startup_s": round(time.monotonic() - t_start, 2)}), flush=True
    )
    line = sys.stdin.readline().split()  # "go <epoch start> <duration>"
    go_at, duration = float(line[1]), float(line[2])

    periods = [
        spec["pad_period_s"] if role == "rating_pad" else spec["kiosk_period_s"]
        for _, role in spec["devices"]
    ]
    heap = [(go_at + rnd.expovariate(1 / p), i) for i, p in enumerate(periods)]
    heapq.heapify(heap)
    store_ms: list[float] = []
    lag_ms: list[float] = []
    errors: list[str] = []
    last_seq: dict[str, int] = {}
    lock = threading.Lock()

    def fire(i: int, due: float) -> None:
        d = devices[i]
        etype = "rating" if spec["devices"][i][1] == "rating_pad" else "checkin"
        data = pad_data(rnd) if etype == "rating" else checkin_data(rnd)
        t0 = time.time()
        try:
            seq = d.emit(etype, data)
        except Exception as e:  # counted and reported: a lost store is a failed run
            with lock:
                errors.append(f"{d.id}: {e}")
            return
        t1 = time.time()
        with lock:
            store_ms.append((t1 - t0) * 1000)
            lag_ms.append((t0 - due) * 1000)
            last_seq[d.id] = max(last_seq.get(d.id, 0), seq)

    pool = ThreadPoolExecutor(max_workers=spec["record_threads"])
    stop_at = go_at + duration
    while heap:
        due, i = heap[0]
        if due >= stop_at:
            break
        now = time.time()
        if due > now:
            time.sleep(min(due - now, 0.05))
            continue
        heapq.heappop(heap)
        pool.submit(fire, i, due)
        heapq.heappush(heap, (due + rnd.expovariate(1 / periods[i]), i))
    pool.shutdown(wait=True)
    gen_end = time.time()
    gen_span = gen_end - go_at

    deadline = time.monotonic() + spec["drain_timeout_s"]
    while time.monotonic() < deadline and any(d.waiting() for d in devices):
        time.sleep(0.2)
    drain_s = time.time() - gen_end
    waiting = sum(d.waiting() for d in devices)
    # The collector acks every second: give it a few seconds so the outboxes end up empty.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and any(
        d.site_acked() < last_seq.get(d.id, 0) for d in devices
    ):
        time.sleep(0.2)
    unacked_devices = sum(d.site_acked() < last_seq.get(d.id, 0) for d in devices)
    result = {
        "devices": len(devices),
        "online": online,
        "recorded": len(store_ms),
        "errors": errors[:20],
        "error_count": len(errors),
        "last_seq": last_seq,
        "store_ms": {
            "p50": pct(store_ms, 50),
            "p99": pct(store_ms, 99),
            "max": max(store_ms, default=None),
        },
        "lag_ms": {"p50": pct(lag_ms, 50), "p99": pct(lag_ms, 99)},
        "waiting_after_drain": waiting,
        "drain_s": round(drain_s, 2),
        "gen_span_s": round(gen_span, 2),
        "devices_not_fully_site_acked": unacked_devices,
    }
    print(json.dumps({"result": result}), flush=True)
    sys.stdin.readline()  # "stop"
    with ThreadPoolExecutor(max_workers=32) as ex:
        list(ex.map(lambda d: d.stop(), devices))
    return 0


# -- collector process -----------------------------------------------------------------------


def collector_main(port: int, ack_every_s: float) -> int:
    """Count what arrives per device and ack it (retained `{"seq": N}`), like the site collector."""
    import paho.mqtt.client as mqtt

    from careterm.harness import subscribed_client

    raise_fd_limit()
    lock = threading.Lock()
    seqs: dict[str, set[int]] = {}
    contiguous: dict[str, int] = {}
    acked: dict[str, int] = {}
    epochs: dict[str, str] = {}  # the outbox epoch each device's events carry (SPEC 9.2)
    ids: set[str] = set()
    total = [0, 0, 0]  # messages, duplicates by id, malformed
    latencies: list[float] = []

    def on_message(c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            ev = json.loads(m.payload)
            dev, seq, eid = ev["device"], ev["seq"], ev["id"]
            t_sent = ev["data"].get("t_sent")
        except (ValueError, KeyError, TypeError, AttributeError):
            total[2] += 1
            return
        with lock:
            total[0] += 1
            if isinstance(ev.get("epoch"), str):
                epochs[dev] = ev["epoch"]
            if eid in ids:
                total[1] += 1
                return
            ids.add(eid)
            if isinstance(t_sent, float):
                latencies.append((now - t_sent) * 1000)
            got = seqs.setdefault(dev, set())
            if isinstance(seq, int):
                got.add(seq)
                n = contiguous.get(dev, 0)
                while n + 1 in got:
                    n += 1
                contiguous[dev] = n

    try:
        c = subscribed_client(
            port,
            [f"{TOPIC_ROOT}/{SITE}/+/events/#", f"{TOPIC_ROOT}/{SITE}/+/alerts/#"],
            f"fleet-collector-{os.getpid()}",
            on_message,
            prepare=lambda cl: cl.max_inflight_messages_set(1000),
            timeout=15,
        )
    except RuntimeError:
        print(json.dumps({"error": "collector could not subscribe"}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    stop = threading.Event()

    def acker() -> None:
        while not stop.wait(ack_every_s):
            with lock:
                due = [(d, n, epochs.get(d)) for d, n in contiguous.items() if n > acked.get(d, 0)]
                for d, n, _ in due:
                    acked[d] = n
            for d, n, epoch in due:
                ack = json.dumps({"seq": n, "epoch": epoch} if epoch else {"seq": n})
                c.publish(Topics(TOPIC_ROOT, SITE, d).ack, ack, qos=1, retain=True)

    threading.Thread(target=acker, daemon=True).start()
    line = sys.stdin.readline().split()  # "expect <path to {device: last_seq}> <timeout>"
    expected: dict[str, int] = json.loads(Path(line[1]).read_text())
    deadline = time.monotonic() + float(line[2])

    def missing() -> int:
        with lock:
            return sum(
                sum(1 for s in range(1, n + 1) if s not in seqs.get(d, ()))
                for d, n in expected.items()
            )

    while time.monotonic() < deadline and missing():
        time.sleep(0.2)
    time.sleep(0.5)  # late duplicates still count
    lost = missing()
    with lock:
        unexpected = sum(1 for d, got in seqs.items() for s in got if s > expected.get(d, 0))
        out = {
            "messages": total[0],
            "duplicates": total[1],
            "malformed": total[2],
            "unique": len(ids),
            "devices_seen": len(seqs),
            "lost": lost,
            "beyond_expected": unexpected,
            "latency_ms": latencies,
        }
    Path(line[3]).write_text(json.dumps(out))
    print(json.dumps({"done": True}), flush=True)
    stop.set()
    c.loop_stop()
    c.disconnect()
    return 0


# -- orchestrator ----------------------------------------------------------------------------


class Child:
    """A worker or the collector: a subprocess spoken to by JSON lines."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.p = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(log, "w"),  # noqa: SIM115 - the child process owns it
            text=True,
            bufsize=1,
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def send(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.p.stdout is not None
        box: list[str] = []
        t = threading.Thread(target=lambda: box.append(self.p.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.log.name}: no answer within {timeout:.0f}s\n{tail}")
        return json.loads(box[0])

    def finish(self, timeout: float = 30) -> None:
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)


@dataclass
class ScenarioResult:
    scenario: dict[str, Any]
    devices_online: int = 0
    startup_s: float = 0.0
    offered_target_per_s: float = 0.0
    offered_per_s: float = 0.0
    recorded: int = 0
    received_unique: int = 0
    messages: int = 0
    lost: int = 0
    duplicated: int = 0
    store_errors: int = 0
    latency_ms: dict[str, Any] = field(default_factory=dict)
    store_ms: dict[str, Any] = field(default_factory=dict)
    schedule_lag_ms: dict[str, Any] = field(default_factory=dict)
    drain_s: float = 0.0
    waiting_after_drain: int = 0
    devices_not_fully_site_acked: int = 0
    cpu_pct: dict[str, Any] = field(default_factory=dict)
    cpu_idle_fleet_pct: dict[str, Any] = field(default_factory=dict)
    rss_mb: dict[str, Any] = field(default_factory=dict)
    loadavg_before: str = ""


def run_scenario(
    sc: Scenario, tmp: Path, *, profile: Path | None = None, log: Callable[[str], None] = print
) -> tuple[ScenarioResult, list[float]]:
    raise_fd_limit()
    work = tmp / sc.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    res = ScenarioResult(
        scenario=asdict(sc),
        offered_target_per_s=round(sc.offered_per_s, 2),
        loadavg_before=Path("/proc/loadavg").read_text().strip(),
    )
    broker = Broker(work / "broker", extra_conf="max_connections -1\n" + sc.broker_conf).start()
    children: list[Child] = []
    sampler: Sampler | None = None
    try:
        collector = Child(["_collector", str(broker.port), "1.0"], work / "collector.log")
        children.append(collector)
        collector.read(30)
        devs = device_ids(sc)
        n = sc.workers or -(-len(devs) // DEVICES_PER_WORKER)
        n = max(1, min(n, len(devs)))
        slices = [devs[i::n] for i in range(n)]
        workers = []
        for w, sl in enumerate(slices):
            spec = {
                "port": broker.port,
                "data_dir": str(work / "data"),
                "raw": sc.raw,
                "seed": w + 1,
                "devices": sl,
                "pad_period_s": sc.pad_period_s,
                "kiosk_period_s": sc.kiosk_period_s,
                "record_threads": sc.record_threads,
                "drain_timeout_s": sc.drain_timeout_s,
            }
            (work / f"worker{w}.json").write_text(json.dumps(spec))
            workers.append(
                Child(["_worker", str(work / f"worker{w}.json")], work / f"worker{w}.log")
            )
        children += workers
        ready = [w.read(180) for w in workers]
        res.devices_online = sum(r["ready"] for r in ready)
        res.startup_s = max(r["startup_s"] for r in ready)
        assert broker.proc is not None
        sampler = Sampler(
            {
                "broker": [broker.proc.pid],
                "simulator": [w.pid for w in workers],
                "collector": [collector.pid],
            }
        )
        sampler.mark("idle0")
        time.sleep(3.0)
        sampler.mark("idle1")
        log(
            f"  {sc.name}: {res.devices_online}/{sc.devices} devices online in "
            f"{res.startup_s:.1f}s; running {sc.duration_s:.0f}s at ~{sc.offered_per_s:.0f} ev/s"
        )
        go_at = time.time() + 0.5
        for w in workers:
            w.send(f"go {go_at} {sc.duration_s}")
        prof_proc = None
        if profile is not None:
            prof_proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(workers[0].pid),
                    "--duration",
                    str(max(5, int(sc.duration_s) - 5)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(profile),
                    "--nonblocking",
                    *os.environ.get("FLEET_PYSPY_ARGS", "").split(),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(work / "py-spy.log", "w"),  # noqa: SIM115 - the child process owns it
            )
        time.sleep(max(0.0, go_at - time.time()))
        sampler.mark("run0")
        time.sleep(sc.duration_s)
        sampler.mark("run1")
        results = [w.read(sc.drain_timeout_s + 60)["result"] for w in workers]
        if prof_proc is not None:
            prof_proc.wait(60)
        expected: dict[str, int] = {}
        for r in results:
            expected.update(r["last_seq"])
        (work / "expected.json").write_text(json.dumps(expected))
        collector.send(f"expect {work / 'expected.json'} 30 {work / 'collected.json'}")
        collector.read(60)
        got = json.loads((work / "collected.json").read_text())
        for w in workers:
            w.send("stop")
        for c in children:
            c.finish(60)
    finally:
        if sampler is not None:
            sampler.stop()
        for c in children:
            if c.p.poll() is None:
                c.p.kill()
                c.p.wait(5)
        broker.stop()

    lat = got.pop("latency_ms")
    res.recorded = sum(r["recorded"] for r in results)
    # When the stores cannot keep up, the scheduled events queue and recording runs past the
    # scenario's end: the rate actually offered is over the span the recording really took.
    res.offered_per_s = round(
        res.recorded / max(sc.duration_s, max(r["gen_span_s"] for r in results)), 2
    )
    res.received_unique = got["unique"]
    res.messages = got["messages"]
    res.lost = got["lost"]
    res.duplicated = got["duplicates"]
    res.store_errors = sum(r["error_count"] for r in results)
    res.latency_ms = {k: _r(pct(lat, p)) for k, p in (("p50", 50), ("p90", 90), ("p99", 99))}
    res.latency_ms["max"] = _r(max(lat, default=None))
    res.store_ms = {
        "p50": _r(_median([r["store_ms"]["p50"] for r in results])),
        "p99": _r(max((r["store_ms"]["p99"] or 0) for r in results)),
    }
    res.schedule_lag_ms = {"p99": _r(max((r["lag_ms"]["p99"] or 0) for r in results))}
    res.drain_s = max(r["drain_s"] for r in results)
    res.waiting_after_drain = sum(r["waiting_after_drain"] for r in results)
    res.devices_not_fully_site_acked = sum(r["devices_not_fully_site_acked"] for r in results)
    res.cpu_pct = sampler.cpu_between("run0", "run1")
    res.cpu_idle_fleet_pct = sampler.cpu_between("idle0", "idle1")
    res.rss_mb = {g: round(v / 1024, 1) for g, v in sampler.rss_max.items()}
    res.rss_mb["simulator_per_device_kb"] = round(
        sampler.rss_max["simulator"] / max(1, sc.devices), 1
    )
    errs = [e for r in results for e in r["errors"]]
    if errs:
        log(f"  store errors: {errs[:3]}")
    return res, lat


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _median(xs: list[float | None]) -> float | None:
    v = sorted(x for x in xs if x is not None)
    return v[len(v) // 2] if v else None


def profile_summary(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's raw (folded) stacks."""
    selfc: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        selfc[frames[-1]] = selfc.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count

    def rank(d: dict[str, int]) -> list[list[Any]]:
        return [
            [f, round(100 * c / max(1, total), 1)]
            for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:top]
        ]

    return {"samples": total, "self_pct": rank(selfc), "inclusive_pct": rank(incl)}


def suite(quick: bool) -> list[Scenario]:
    """The scenarios of a full run (about 11 minutes) or a quick one (about 5)."""
    d = 30.0 if quick else 60.0
    s = 20.0 if quick else 25.0
    pads, kiosks = 1000, 50
    # Nagle on the broker's sockets holds small PUBLISHes to the collector until the previous
    # segment is ACKed (up to the peer's 40 ms delayed ACK): a site broker should turn it off.
    nodelay = "set_tcp_nodelay true\n"
    rp, rk = REAL_PAD_PERIOD_S, REAL_KIOSK_PERIOD_S
    out = [
        Scenario("realistic", pads, kiosks, rp, rk, d, broker_conf=nodelay),
        Scenario("realistic-raw-paho", pads, kiosks, rp, rk, d, raw=True, broker_conf=nodelay),
        Scenario("10x", pads, kiosks, rp / 10, rk / 10, d, broker_conf=nodelay),
        Scenario("10x-raw-paho", pads, kiosks, rp / 10, rk / 10, d, raw=True, broker_conf=nodelay),
        Scenario("10x-stock-broker", pads, kiosks, rp / 10, rk / 10, d),
    ]
    # Past the limit: same fleet, every device faster, step by step.
    for mult in (30, 100, 300) if quick else (30, 100, 200, 300):
        out.append(
            Scenario(f"stress-{mult}x", pads, kiosks, rp / mult, rk / mult, s, broker_conf=nodelay)
        )
    return out


def summary_line(r: ScenarioResult) -> str:
    c = r.cpu_pct
    return (
        f"  -> offered {r.offered_per_s}/s (target {r.offered_target_per_s}), recorded "
        f"{r.recorded}, received {r.received_unique}, lost {r.lost}, dup {r.duplicated}, "
        f"p50 {r.latency_ms['p50']} ms, p99 {r.latency_ms['p99']} ms; CPU broker {c['broker']}% "
        f"sim {c['simulator']}% collector {c['collector']}% machine {c['machine_busy_pct']}%"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--suite", action="store_true", help="run the standard scenarios")
    ap.add_argument("--quick", action="store_true", help="shorter suite")
    ap.add_argument("--only", help="comma-separated scenario names of the suite to run")
    ap.add_argument("--pads", type=int, default=20)
    ap.add_argument("--kiosks", type=int, default=2)
    ap.add_argument("--pad-period", type=float, default=1.0)
    ap.add_argument("--kiosk-period", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0: auto)")
    ap.add_argument("--raw", action="store_true", help="bare paho clients (the baseline)")
    ap.add_argument("--broker-conf", default="", help="extra mosquitto.conf lines (\\n-separated)")
    ap.add_argument("--profile", help="py-spy raw stacks of worker 0 of one scenario here")
    ap.add_argument(
        "--profile-scenario",
        default="stress-100x",
        help="the suite scenario to profile (default: stress-100x, busy but not saturated)",
    )
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--samples", help="write the latency samples (ms) per scenario here")
    args = ap.parse_args()
    if args.suite:
        scenarios = suite(args.quick)
        if args.only:
            keep = set(args.only.split(","))
            scenarios = [s for s in scenarios if s.name in keep]
    else:
        scenarios = [
            Scenario(
                "custom",
                args.pads,
                args.kiosks,
                args.pad_period,
                args.kiosk_period,
                args.duration,
                workers=args.workers,
                raw=args.raw,
                drain_timeout_s=30,
                broker_conf=args.broker_conf.replace("\\n", "\n") + "\n",
            )
        ]
    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "fd_limit": raise_fd_limit(),
        "machine": os.uname().machine,
        "scenarios": [],
    }
    samples: dict[str, list[float]] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleet-") as d:
        tmp = Path(os.environ.get("BENCH_TMP") or d)
        for i, sc in enumerate(scenarios):
            last = i == len(scenarios) - 1
            prof = (
                Path(args.profile)
                if args.profile and (sc.name == args.profile_scenario or (last and not args.suite))
                else None
            )
            print(f"[{time.monotonic() - t0:5.0f}s] {sc.name}", flush=True)
            r, lat = run_scenario(sc, tmp, profile=prof)
            print(summary_line(r), flush=True)
            out["scenarios"].append(asdict(r))
            # Enough for a distribution plot (at most ~10,000); percentiles above use every sample.
            step = max(1, len(lat) // 10000)
            samples[sc.name] = [round(x, 2) for x in lat[::step]]
    out["elapsed_s"] = round(time.monotonic() - t0, 1)
    if args.profile and Path(args.profile).exists():
        out["profile"] = profile_summary(Path(args.profile))
    by = {s["scenario"]["name"]: s for s in out["scenarios"]}
    ratios = {}
    for base in ("realistic", "10x"):
        a, b = by.get(base), by.get(f"{base}-raw-paho")
        if a and b and b["latency_ms"]["p99"]:
            ratios[base] = {
                "p50_latency_ratio": round(a["latency_ms"]["p50"] / b["latency_ms"]["p50"], 2),
                "p99_latency_ratio": round(a["latency_ms"]["p99"] / b["latency_ms"]["p99"], 2),
                "simulator_cpu_ratio": round(
                    a["cpu_pct"]["simulator"] / max(0.1, b["cpu_pct"]["simulator"]), 2
                ),
                "broker_cpu_ratio": round(
                    a["cpu_pct"]["broker"] / max(0.1, b["cpu_pct"]["broker"]), 2
                ),
                "simulator_rss_ratio": round(
                    a["rss_mb"]["simulator"] / max(0.1, b["rss_mb"]["simulator"]), 2
                ),
            }
    out["vs_raw_paho"] = ratios
    text = json.dumps(out, indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.samples:
        Path(args.samples).write_text(json.dumps(samples))
    if not args.json:
        print(text)
    bad = [s["scenario"]["name"] for s in out["scenarios"] if s["lost"] or s["store_errors"]]
    if bad:
        print(f"LOST EVENTS in {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        raise SystemExit(worker_main(json.loads(Path(sys.argv[2]).read_text())))
    if len(sys.argv) > 1 and sys.argv[1] == "_collector":
        raise SystemExit(collector_main(int(sys.argv[2]), float(sys.argv[3])))
    raise SystemExit(main())
