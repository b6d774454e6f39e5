"""Pi-class CPU budget: the pad (headless and with its screen) and the kiosk as real processes
inside a cgroup CPU quota, each measured against the same scenario unconstrained in the same run.

  budgets   unconstrained (the baseline), Pi 4-class (25 % of one core), Pi 3-class (10 %)
  pad       `careterm pad --headless`: start -> retained `online` seen by a subscriber; key on a
            pty -> rating event at an independent subscriber (p50/p99); VmRSS after the presses.
            Baseline for key -> broker: a raw paho QoS 1 publisher under the same quota.
  pad_ui    `careterm pad` with its Kivy screen on a private Xvfb: start -> first frame;
            key -> broker back to back and 1.5 s apart (one press per patient: the goal);
            VmRSS (and how much of it is Mesa/GL, from smaps)
  kiosk     `careterm kiosk` on the private Xvfb, 20,000-entry roster: start -> first frame of
            the attract (home) screen; card line on a pty -> appointment list on screen (the
            first read at once, the others once the kiosk has settled); Enter (an X key event)
            -> ticket bytes in the file printer; VmRSS. Then a restart with the same data: start
            -> first frame, and a card read at once -> list (the roster's index file opened,
            not built: the morning boot of a kiosk whose roster came overnight)
  pad_ui_gpu, kiosk_gpu
            the same with Mesa's llvmpipe threads moved out of the quota (a Pi's GPU draws)
  kivy_bare the memory baseline of the screens: a bare Kivy app (the same Python, Kivy, CJK
            font and window as the pad's screen; a label and four buttons, no careterm code):
            start -> first frame and VmRSS, so the pad's and the kiosk's memory read as what
            they add to the floor any Kivy screen pays here (llvmpipe included)

Every measured process is put into the cgroup by a `sh` wrapper before it execs, so start-up
runs inside the quota; the broker, Xvfb and the measuring subscribers stay outside (the site's
broker and a Pi's display are not the device's Python). Frames are seen through the opt-in
`CARETERM_BENCH_MARKS` file (terminal/marks.py). cgroup v2 `cpu.max` when the unified hierarchy
offers the cpu controller, else v1 `cpu.cfs_quota_us`; neither writable: a skip, exit 0.

  .venv/bin/python bench/pi_budget.py [--quick] [--json out.json] [--period-ms 10]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from careterm.harness import Pty, careterm_cmd, careterm_env, subscribed_client, write_config
from careterm.localbroker import Broker, wait_for

BUDGETS: list[tuple[str, float | None]] = [("unconstrained", None), ("pi4", 0.25), ("pi3", 0.10)]
"""(name, share of one core); None: no quota (the same-run baseline)."""
GOALS = {  # issue 16, at the Pi 3-class budget
    "kiosk.first_frame_s": 4.0,
    "kiosk.card_to_list_ms": 300.0,
    "kiosk.enter_to_ticket_ms": 300.0,
    "pad.key_to_broker_p99_ms": 50.0,
    "pad_ui.key_to_broker_p99_ms": 50.0,
    "kiosk.rss_mb": 120.0,
    "pad.rss_mb": 50.0,
    "pad_ui.rss_mb": 50.0,
}
GOAL_BUDGET = "pi3"
PACED_GAP_S = 1.5
"""Pad with a screen: presses this long after the last one's event (its thank-you frame drawn)."""
SCREEN = (1280, 800)
XK_RETURN, XK_ESCAPE = 0xFF0D, 0xFF1B
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- cgroups (pure helpers first: tests/bench/test_pi_budget.py) --------------------------------


def cgroup_mounts(mounts: str) -> tuple[Path | None, Path | None]:
    """(the v1 hierarchy holding the cpu controller, the v2 mount) from /proc/mounts text."""
    v1 = v2 = None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        where, kind, opts = parts[1], parts[2], parts[3].split(",")
        if kind == "cgroup2" and v2 is None:
            v2 = Path(where)
        elif kind == "cgroup" and "cpu" in opts and v1 is None:
            v1 = Path(where)
    return v1, v2


def cpu_max_text(share: float | None, period_us: int) -> str:
    """cgroup v2 `cpu.max` for a share of one core ("max <period>" without a quota)."""
    if share is None:
        return f"max {period_us}"
    return f"{max(1000, round(share * period_us))} {period_us}"


def v1_quota_us(share: float | None, period_us: int) -> int:
    """cgroup v1 `cpu.cfs_quota_us` for a share of one core (-1: no quota)."""
    return -1 if share is None else max(1000, round(share * period_us))


def status_kb(status: str, field: str) -> int | None:
    """A `kB` field (VmRSS, VmHWM) of /proc/PID/status text."""
    m = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) if m else None


GL_LIBS = re.compile(r"(dri|gallium|LLVM|libGL|libEGL|glapi|libgbm|libdrm|libvulkan|swrast)")


def smaps_rss_kb(smaps: str) -> dict[str, int]:
    """Rss by kind of mapping from /proc/PID/smaps text: `gl` (Mesa, LLVM, GL libraries),
    `other_libs` (every other file mapping), `anon` (heap, stacks, anonymous)."""
    out = {"gl": 0, "other_libs": 0, "anon": 0}
    name = ""
    for line in smaps.splitlines():
        head = line.split(None, 5)
        if head and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", head[0]):
            name = head[5].strip() if len(head) > 5 else ""
        elif line.startswith("Rss:"):
            kb = int(line.split()[1])
            if name.startswith("/") and not name.startswith("/memfd:"):
                out["gl" if GL_LIBS.search(name) else "other_libs"] += kb
            else:
                out["anon"] += kb
    return out


@dataclass
class Cgroup:
    """One CPU-limited cgroup the benchmark made (and removes)."""

    path: Path

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def wrap(self, cmd: list[str]) -> list[str]:
        """`cmd` started by a shell that first moves itself into this cgroup, then execs."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs), *cmd]

    def throttled(self) -> dict[str, int]:
        try:
            text = (self.path / "cpu.stat").read_text()
        except OSError:
            return {}
        return {k: int(v) for k, v in (line.split() for line in text.splitlines() if line)}

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    return
                time.sleep(0.1)  # its last process is still exiting


class Cgroups:
    """Where CPU quotas can be set here: v2 with the cpu controller, else v1, else `why` not."""

    def __init__(self, mounts: str | None = None) -> None:
        if mounts is None:
            mounts = Path("/proc/mounts").read_text()
        self.v1, self.v2 = cgroup_mounts(mounts)
        self._made: list[Cgroup] = []
        self.version, self.root = 0, Path("/")
        candidates: list[tuple[int, Path]] = []
        if self.v2 is not None and self._v2_cpu():
            candidates.append((2, self.v2))
        if self.v1 is not None and os.access(self.v1 / "cpu.cfs_quota_us", os.W_OK):
            candidates.append((1, self.v1))
        faults = []
        for version, root in candidates:
            self.version, self.root = version, root
            try:
                self.make("probe", 0.5, 100_000).remove()
                self._made.clear()
                self.why = ""
                return
            except OSError as e:
                faults.append(f"v{self.version} at {self.root}: {e}")
        self.version = 0
        self.why = "no writable CPU controller: " + (
            "; ".join(faults)
            or f"cgroup v2 without `cpu` in cgroup.controllers ({self.v2}) and no writable v1 "
            f"cpu.cfs_quota_us ({self.v1}); run as root on a machine whose cgroups this user "
            "may change"
        )

    def _v2_cpu(self) -> bool:
        assert self.v2 is not None
        try:
            if "cpu" not in (self.v2 / "cgroup.controllers").read_text().split():
                return False
            control = self.v2 / "cgroup.subtree_control"
            if "cpu" not in control.read_text().split():
                # the root's children get the cpu controller (systemd usually enabled it already)
                control.write_text("+cpu")
            return True
        except OSError:
            return False

    def make(self, name: str, share: float | None, period_us: int) -> Cgroup:
        path = self.root / f"careterm-pibudget-{os.getpid()}-{name}"
        path.mkdir(exist_ok=True)
        cg = Cgroup(path)
        self._made.append(cg)
        if self.version == 2:
            (path / "cpu.max").write_text(cpu_max_text(share, period_us))
        else:
            (path / "cpu.cfs_quota_us").write_text("-1")
            (path / "cpu.cfs_period_us").write_text(str(period_us))
            (path / "cpu.cfs_quota_us").write_text(str(v1_quota_us(share, period_us)))
        return cg

    def remove_all(self) -> None:
        for cg in self._made:
            cg.remove()
        self._made.clear()


# -- measuring helpers -------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50": round(pct(ms, 50), 1),
        "p99": round(pct(ms, 99), 1),
        "max": round(max(ms), 1),
    }


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM and the smaps split of one process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    out = {
        "rss_mb": round((status_kb(status, "VmRSS") or 0) / 1024, 1),
        "hwm_mb": round((status_kb(status, "VmHWM") or 0) / 1024, 1),
    }
    try:
        split = smaps_rss_kb(Path(f"/proc/{pid}/smaps").read_text())
    except OSError:
        return out
    out.update({f"{k}_mb": round(v / 1024, 1) for k, v in split.items()})
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / CLK_TCK, 2)


def idle_cpu(pid: int, seconds: float = 3.0) -> float:
    """The share of one core a process uses while nobody touches it (redraws, timers)."""
    time.sleep(1.0)
    c0 = cpu_s(pid)
    time.sleep(seconds)
    return round((cpu_s(pid) - c0) / seconds, 3)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Receiver:
    """An independent subscriber stamping each message's arrival (paho's network thread)."""

    def __init__(self, port: int, topic: str, name: str) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.c = subscribed_client(port, topic, f"pibudget-{name}-{os.getpid()}", self._msg)

    def _msg(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        try:
            body = json.loads(m.payload)
        except ValueError:
            body = {"raw": m.payload.decode(errors="replace")}
        with self.lock:
            self.arrivals.append((now, body if isinstance(body, dict) else {"raw": body}))

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Marks:
    """The `CARETERM_BENCH_MARKS` file an app appends `<monotonic> <name>` lines to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def read(self) -> list[tuple[float, str]]:
        out = []
        for line in self.path.read_text().splitlines():
            t, _, name = line.partition(" ")
            try:
                out.append((float(t), name))
            except ValueError:
                continue  # a line being written
        return out

    def first(self, prefix: str, after: float = 0.0) -> float | None:
        return next((t for t, n in self.read() if n.startswith(prefix) and t > after), None)

    def wait(self, prefix: str, after: float, timeout: float) -> float:
        return wait_for(
            lambda: self.first(prefix, after), timeout, every=0.002, what=f"mark {prefix!r}"
        )


class XKeys:
    """Key presses into an X display through XTest (libX11 + libXtst by ctypes)."""

    def __init__(self, display: str) -> None:
        x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        self.xtst = ctypes.CDLL(ctypes.util.find_library("Xtst") or "libXtst.so.6")
        x11.XOpenDisplay.argtypes, x11.XOpenDisplay.restype = [ctypes.c_char_p], ctypes.c_void_p
        x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x11.XKeysymToKeycode.restype = ctypes.c_ubyte
        x11.XFlush.argtypes = [ctypes.c_void_p]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.xtst.XTestFakeKeyEvent.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_ulong,
        ]
        self.xtst.XTestFakeMotionEvent.argtypes = (
            [ctypes.c_void_p] + [ctypes.c_int] * 3 + [ctypes.c_ulong]
        )
        self.x11 = x11
        self.d = x11.XOpenDisplay(display.encode())
        if not self.d:
            raise RuntimeError(f"cannot open X display {display}")
        # Without a window manager the focus follows the pointer: put it on the app's window.
        self.xtst.XTestFakeMotionEvent(self.d, 0, SCREEN[0] // 2, SCREEN[1] // 2, 0)
        x11.XFlush(self.d)

    def press(self, keysym: int) -> None:
        code = self.x11.XKeysymToKeycode(self.d, keysym)
        self.xtst.XTestFakeKeyEvent(self.d, code, 1, 0)
        self.xtst.XTestFakeKeyEvent(self.d, code, 0, 0)
        self.x11.XFlush(self.d)

    def close(self) -> None:
        self.x11.XCloseDisplay(self.d)


@contextmanager
def xvfb() -> Iterator[str]:
    """A private Xvfb (outside every quota) on a display it picks itself (-displayfd)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24"]
        + ["-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        if not number.isdigit():
            raise RuntimeError("Xvfb did not report its display")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def process(cmd: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# -- scenarios ---------------------------------------------------------------------------------


class GpuThreads:
    """A Pi draws with its GPU; here Mesa's llvmpipe draws on the CPU, in threads of the app
    named `llvmpipe-N`. This moves each of them, as it appears, out of the quota into a cgroup
    without one (cgroup v1 moves single threads through `tasks`; v2 only inside a threaded
    subtree, which this does not set up), so that the quota holds what a Pi's CPU runs."""

    def __init__(self, pid: int, to: Cgroup) -> None:
        self.pid, self.to = pid, to
        self.moved: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-threads", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                tasks = list(Path(f"/proc/{self.pid}/task").iterdir())
            except OSError:
                return
            for t in tasks:
                tid = int(t.name)
                if tid in self.moved:
                    continue
                try:
                    if (t / "comm").read_text().startswith("llvmpipe"):
                        (self.to.path / "tasks").write_text(str(tid))
                        self.moved.add(tid)
                except OSError:
                    continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(2)
        return len(self.moved)


@dataclass
class Run:
    budget: str
    tmp: Path
    broker: Broker
    cg: Cgroup
    presses: int
    kiosk_reads: int
    display: str | None
    gpu: Cgroup | None = None
    """Where Mesa's rendering threads go (no quota): the `_gpu` scenarios (GpuThreads)."""

    def rendering_outside(self, pid: int) -> GpuThreads | None:
        """For the `_gpu` scenarios: Mesa's threads of `pid` moved out of the quota."""
        return GpuThreads(pid, self.gpu) if self.gpu is not None else None


def final_tally(out: dict[str, Any], pid: int, gpu: GpuThreads | None) -> None:
    """After a scenario's inputs: memory once settled, the CPU used in all, and how many
    rendering threads were moved out of the quota."""
    time.sleep(0.5)
    out["memory"] = memory(pid)
    out["cpu_s_total"] = cpu_s(pid)
    if gpu is not None:
        out["gl_threads_outside_quota"] = gpu.stop()


def one_at_a_time(
    n: int, rx: Receiver, trigger: Callable[[int], None], gap_s: float = 0.05
) -> list[float]:
    """Call `trigger(i)` n times, each after the previous message arrived (or 2 s) and `gap_s`
    more (a patient does not press twice within 50 ms); the send times."""
    sent: list[float] = []
    for i in range(n):
        before = rx.count
        sent.append(time.monotonic())
        trigger(i)
        deadline = time.monotonic() + 2.0
        while rx.count == before and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(gap_s)
    return sent


def press_keys(
    run: Run,
    pty: Pty,
    rx: Receiver,
    alive: Callable[[], bool],
    n: int,
    gap_s: float = 0.05,
) -> list[float]:
    """Key presses on the keypad pty, one at a time (the next `gap_s` after the previous event
    arrived, or 2 s), paired with the rating events by the pad's `seq`: press -> event at the
    broker."""
    # The keypad opens its port on its own thread: press until the first event comes back.
    end = time.monotonic() + 60
    while rx.count == 0:
        if time.monotonic() > end or not alive():
            raise RuntimeError("the pad never sent an event for a key")
        pty.write(b"2")
        for _ in range(100):
            if rx.count:
                break
            time.sleep(0.02)
    time.sleep(1.0)
    with rx.lock:
        warm = max(int(b.get("seq", 0)) for _, b in rx.arrivals)
    sent = one_at_a_time(n, rx, lambda i: pty.write(b"234"[i % 3 : i % 3 + 1]), gap_s)
    wait_for(lambda: rx.count >= n + warm, timeout=30, what="every rating event")
    with rx.lock:
        by_seq = {int(b["seq"]): t for t, b in rx.arrivals if "seq" in b}
    return [(by_seq[warm + 1 + i] - sent[i]) * 1000 for i in range(n)]


def pad_config(run: Run, name: str, pty: Pty) -> Path:
    return write_config(
        run.tmp / f"{name}.toml",
        device_id=f"pad-{name}",
        data_dir=run.tmp / f"{name}-data",
        broker_url=run.broker.url,
        extra='[rating]\nmode = "free"\ncooldown_s = 0\ndebounce_ms = 0\nvoice = false\n'
        f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n',
    )


def bench_pad(run: Run, *, ui: bool) -> dict[str, Any]:
    name = f"{'ui' if ui else 'hl'}-{run.budget}{'-gl' if run.gpu else ''}"
    pty = Pty()
    cfg = pad_config(run, name, pty)
    base = f"careterm/main/pad-{name}"
    rx = Receiver(run.broker.port, f"{base}/events/rating", f"rx-{name}")
    status = Receiver(run.broker.port, f"{base}/status", f"st-{name}")
    marks = Marks(run.tmp / f"{name}.marks")
    env = careterm_env(CARETERM_LOG="INFO", CARETERM_BENCH_MARKS=str(marks.path))
    args = ["pad", "--config", str(cfg)]
    if ui:
        assert run.display is not None
        env.update(DISPLAY=run.display, KIVY_NO_ARGS="1", CARETERM_PAD_WINDOW="800x480")
    else:
        args.append("--headless")
    log = run.tmp / f"{name}.log"
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        with process(run.cg.wrap(careterm_cmd(*args)), log, env) as proc:
            gpu = run.rendering_outside(proc.pid)

            def online() -> float | None:
                with status.lock:
                    return next((t for t, b in status.arrivals if b.get("state") == "online"), None)

            wait_for(lambda: online() or proc.poll() is not None, timeout=180, what="online")
            online_t = online()
            if online_t is None:
                raise RuntimeError(f"pad exited {proc.returncode}: {tail(log)}")
            out["start_to_online_s"] = round(online_t - t0, 3)
            out["cpu_s_at_online"] = cpu_s(proc.pid)
            if ui:
                first = marks.wait("frame pad", 0.0, 180)
                out["start_to_first_frame_s"] = round(first - t0, 3)
                out["cpu_s_at_first_frame"] = cpu_s(proc.pid)
                out["memory_at_first_frame"] = memory(proc.pid)
            out["idle_cpu_share"] = idle_cpu(proc.pid)
            lat = press_keys(run, pty, rx, lambda: proc.poll() is None, run.presses)
            out["key_to_broker_ms"] = summary(lat)
            if ui:
                # A patient's press finds the screen done with the last one: a rating pad takes
                # one press per patient, seconds apart. Back to back (above), each press also
                # waits for the frames of the one before it.
                n = max(10, run.presses // 3)
                paced = press_keys(run, pty, rx, lambda: proc.poll() is None, n, PACED_GAP_S)
                out["key_to_broker_paced_ms"] = summary(paced)
            final_tally(out, proc.pid, gpu)
    finally:
        rx.close()
        status.close()
        pty.close()
    out["throttled"] = run.cg.throttled()
    return out


RAW_PUBLISHER = """
import json, os, sys, time, paho.mqtt.client as mqtt
c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                client_id=f"pibudget-raw-{os.getpid()}", protocol=mqtt.MQTTv5)
c.connect("127.0.0.1", int(sys.argv[1])); c.loop_start()
while not c.is_connected(): time.sleep(0.01)
print("ready", flush=True)
for line in sys.stdin:
    body = json.dumps({"seq": int(line), "pad": "x" * 300}).encode()
    c.publish(sys.argv[2], body, qos=1)
"""


def bench_raw(run: Run) -> dict[str, Any]:
    """Baseline for key -> broker: a bare paho QoS 1 publisher process under the same quota,
    told to publish through a pipe (as the pad is told through its pty)."""
    topic = f"pibudget/raw/{run.cg.path.name}"
    rx = Receiver(run.broker.port, topic, "rx-raw")
    cmd = run.cg.wrap([sys.executable, "-c", RAW_PUBLISHER, str(run.broker.port), topic])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("raw publisher did not start")
        stdin = proc.stdin

        def trigger(i: int) -> None:
            stdin.write(f"{i}\n")
            stdin.flush()

        sent = one_at_a_time(run.presses, rx, trigger)
        wait_for(lambda: rx.count >= run.presses, timeout=30, what="raw messages")
        with rx.lock:
            by_seq = {int(b["seq"]): t for t, b in rx.arrivals}
        lat = [(by_seq[i] - sent[i]) * 1000 for i in range(run.presses)]
        return {"key_to_broker_ms": summary(lat), "memory": memory(proc.pid)}
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(10)
        rx.close()


KIVY_BARE = """
import os, sys, time
os.environ.setdefault("KIVY_NO_ARGS", "1")
from kivy.config import Config
w, h = sys.argv[2].split("x")
Config.set("graphics", "width", w); Config.set("graphics", "height", h)
Config.set("graphics", "resizable", "0")
from kivy.app import App
from kivy.core.text import LabelBase
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
if sys.argv[3]:
    LabelBase.register("CJK", sys.argv[3])
font = "CJK" if sys.argv[3] else "Roboto"

def flipped(*_):
    Window.unbind(on_flip=flipped)
    with open(sys.argv[1], "a") as f:
        f.write(f"{time.monotonic():.6f} frame bare\\n")

class Bare(App):
    def load_kv(self, filename=None):
        return False  # no .kv file (and `-c` has no source file to look beside)

    def build(self):
        Window.bind(on_flip=flipped)
        root = BoxLayout(orientation="vertical", padding=20, spacing=20)
        root.add_widget(Label(text="请为本次服务评价", font_name=font, font_size=48))
        keys = BoxLayout(spacing=20)
        for text in ("不满意", "基本满意", "满意", "非常满意"):
            keys.add_widget(Button(text=text, font_name=font, font_size=36))
        root.add_widget(keys)
        return root

Bare().run()
"""


def bench_kivy_bare(run: Run) -> dict[str, Any]:
    """The floor of a Kivy screen on this machine: a bare app with the pad's window size and
    CJK font (a label, four buttons), no careterm module. Start -> first frame; VmRSS."""
    from terminal.fonts import find_cjk_font

    assert run.display is not None
    name = f"bare-{run.budget}"
    marks = Marks(run.tmp / f"{name}.marks")
    env = careterm_env(DISPLAY=run.display, KIVY_NO_ARGS="1")
    script = [sys.executable, "-c", KIVY_BARE, str(marks.path), "800x480", find_cjk_font() or ""]
    log = run.tmp / f"{name}.log"
    out: dict[str, Any] = {"window": "800x480"}
    t0 = time.monotonic()
    with process(run.cg.wrap(script), log, env) as proc:
        wait_for(lambda: marks.first("frame bare") or proc.poll() is not None, 180, what="a frame")
        first = marks.first("frame bare")
        if first is None:
            raise RuntimeError(f"exited {proc.returncode} before a frame; log: {tail(log)}")
        out["start_to_first_frame_s"] = round(first - t0, 3)
        out["cpu_s_at_first_frame"] = cpu_s(proc.pid)
        time.sleep(1.0)  # a few idle frames, as the pad's figure is taken after its presses
        final_tally(out, proc.pid, None)
    out["throttled"] = run.cg.throttled()
    return out


def kiosk_files(run: Run, name: str, pty: Pty, n_reads: int) -> tuple[Path, Path, list[str], int]:
    """A kiosk configuration with the demo roster of 20,000 patients (and the 4 demo ones) plus
    one appointment per card to read; returns the roster's length last."""
    from careterm.demo_data import add_card_holders, demo_directory, demo_roster
    from terminal.resident_id import complete

    d = run.tmp / name
    d.mkdir()
    salt = b"pibudget-salt"
    (d / "site.salt").write_bytes(salt)
    now = datetime.now().astimezone()
    roster = demo_roster(salt, size=20_000, now=now)
    numbers = [complete(f"11010119800101{i:03d}") for i in range(n_reads)]
    add_card_holders(roster, salt, numbers, now)
    (d / "roster.json").write_text(json.dumps(roster, ensure_ascii=False))
    (d / "data").mkdir()
    (d / "directory.json").write_text(json.dumps(demo_directory(), ensure_ascii=False))
    ticket = d / "tickets.bin"
    cfg = d / "kiosk.toml"
    cfg.write_text(
        f"""
[device]
id = "kiosk-{name}"
role = "kiosk"
site = "main"
data_dir = "{d / "data"}"
[mqtt]
url = "{run.broker.url}"
[privacy]
salt_file = "{d / "site.salt"}"
[card_reader]
driver = "serial"
device = "{pty.path}"
[printer]
driver = "file"
device = "{ticket}"
[kiosk]
roster_file = "{d / "roster.json"}"
idle_timeout_s = 600
voice = false
""",
        encoding="utf-8",
    )
    return cfg, ticket, numbers, len(roster["appointments"])


def bench_kiosk(run: Run) -> dict[str, Any]:
    assert run.display is not None
    name = f"kiosk-{run.budget}{'-gl' if run.gpu else ''}"
    pty = Pty()
    cfg, ticket, numbers, entries = kiosk_files(run, name, pty, run.kiosk_reads + 1)
    numbers, after_restart = numbers[:-1], numbers[-1]
    initials = cfg.parent / "data" / "pinyin-initials.json"  # kiosk.service.INITIALS_FILE
    marks = Marks(run.tmp / f"{name}.marks")
    env = careterm_env(
        CARETERM_LOG="INFO",
        CARETERM_BENCH_MARKS=str(marks.path),
        DISPLAY=run.display,
        KIVY_NO_ARGS="1",
        CARETERM_KIOSK_SIZE=f"{SCREEN[0]}x{SCREEN[1]}",
    )
    log = run.tmp / f"{name}.log"
    out: dict[str, Any] = {"roster": entries, "window": "x".join(map(str, SCREEN))}
    keys = XKeys(run.display)
    t0 = time.monotonic()
    try:
        cmd = run.cg.wrap(careterm_cmd("kiosk", "--config", str(cfg), "--windowed"))
        with process(cmd, log, env) as proc:
            gpu = run.rendering_outside(proc.pid)
            try:
                first = marks.wait("frame kiosk home", 0.0, 240)
            except AssertionError:
                raise RuntimeError(f"no home frame; kiosk log: {tail(log)}") from None
            out["start_to_first_frame_s"] = round(first - t0, 3)
            out["cpu_s_at_first_frame"] = cpu_s(proc.pid)
            out["memory_at_first_frame"] = memory(proc.pid)
            lists: list[float] = []
            tickets: list[float] = []
            rss_after_read: list[float] = []
            for i, number in enumerate(numbers):
                if i == 1:
                    # The first read came right after the first frame (the documents were still
                    # being read). A kiosk then makes its guide's pinyin initials once per
                    # directory (a child process, seconds of a Pi's CPU); the other reads are a
                    # kiosk that has settled, as it is all day.
                    t_settle = time.monotonic()
                    wait_for(initials.exists, 300, what="the guide's pinyin initials")
                    out["start_to_settled_s"] = round(time.monotonic() - t0, 3)
                    out["settle_wait_s"] = round(time.monotonic() - t_settle, 3)
                    out["idle_cpu_share"] = idle_cpu(proc.pid)
                t_read = time.monotonic()
                pty.write(f"{number}\r\n".encode())
                t_list = marks.wait("frame kiosk appointments", t_read, 60)
                lists.append((t_list - t_read) * 1000)
                size = ticket.stat().st_size if ticket.exists() else 0
                time.sleep(0.3)  # a patient reads the list before pressing Enter
                t_enter = time.monotonic()
                keys.press(XK_RETURN)
                t_ticket = wait_for(
                    lambda s=size: (
                        ticket.exists() and ticket.stat().st_size > s and time.monotonic()
                    ),
                    60,
                    every=0.001,
                    what="ticket bytes",
                )
                tickets.append((t_ticket - t_enter) * 1000)
                t_done = marks.wait("frame kiosk done", t_enter, 60)
                time.sleep(max(0.0, t_done + 1.3 - time.monotonic()))  # past the Home grace
                t_esc = time.monotonic()
                keys.press(XK_ESCAPE)
                marks.wait("frame kiosk home", t_esc, 60)
                time.sleep(0.3)
                rss_after_read.append(memory(proc.pid)["rss_mb"])
            out["first_read_to_list_ms"] = round(lists[0], 1)
            out["first_enter_to_ticket_ms"] = round(tickets[0], 1)
            out["card_to_list_ms"] = summary(lists[1:])
            out["enter_to_ticket_ms"] = summary(tickets[1:])
            out["rss_mb_after_each_read"] = rss_after_read
            final_tally(out, proc.pid, gpu)
        out["restart"] = kiosk_restart(run, cmd, env, marks, pty, after_restart)
    finally:
        keys.close()
        pty.close()
    out["throttled"] = run.cg.throttled()
    return out


def kiosk_restart(
    run: Run, cmd: list[str], env: dict[str, str], marks: Marks, pty: Pty, number: str
) -> dict[str, Any]:
    """The same kiosk started again on its data: start -> first frame; a card read at once ->
    list (what the documents take to be ready when nothing has to be validated); VmRSS."""
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    with process(cmd, run.tmp / "kiosk-restart.log", env) as proc:
        gpu = run.rendering_outside(proc.pid)
        first = marks.wait("frame kiosk home", t0, 240)
        out["start_to_first_frame_s"] = round(first - t0, 3)
        t_read = time.monotonic()
        pty.write(f"{number}\r\n".encode())
        t_list = marks.wait("frame kiosk appointments", t_read, 120)
        out["first_read_to_list_ms"] = round((t_list - t_read) * 1000, 1)
        final_tally(out, proc.pid, gpu)
    return out


# -- the run -----------------------------------------------------------------------------------


def sysbench_events(text: str) -> float | None:
    """`events per second` from `sysbench cpu` output."""
    m = re.search(r"events per second:\s+([0-9.]+)", text)
    return float(m.group(1)) if m else None


def bench_sysbench(run: Run) -> dict[str, Any]:
    """Calibration: `sysbench cpu --threads=1` (primes up to 10,000) inside the quota, to set
    beside published single-core figures of a Pi (integer division only: a rough yardstick)."""
    if shutil.which("sysbench") is None:
        return {"skipped": "sysbench is not installed (apt-get install sysbench)"}
    cmd = run.cg.wrap(["sysbench", "cpu", "--threads=1", "--time=5", "run"])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    return {"events_per_s": sysbench_events(out)}


SCENARIOS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "sysbench": bench_sysbench,
    "pad": lambda run: bench_pad(run, ui=False),
    "raw": bench_raw,
    "pad_ui": lambda run: bench_pad(run, ui=True),
    "kiosk": bench_kiosk,
    # the same with Mesa's rendering threads outside the quota, as a Pi's GPU (GpuThreads)
    "pad_ui_gpu": lambda run: bench_pad(run, ui=True),
    "kiosk_gpu": bench_kiosk,
    "kivy_bare": bench_kivy_bare,
}
UI_SCENARIOS = {"pad_ui", "kiosk", "pad_ui_gpu", "kiosk_gpu", "kivy_bare"}


def guarded(what: str, fn: Callable[[Run], dict[str, Any]], run: Run) -> dict[str, Any]:
    t = time.monotonic()
    print(f"  {what} ...", flush=True)
    try:
        out = fn(run)
    except Exception as e:  # one scenario failing must not hide the others
        out = {"error": f"{type(e).__name__}: {e}"}
    out["loadavg_after"] = loadavg()
    out["elapsed_s"] = round(time.monotonic() - t, 1)
    print(f"  {what}: {json.dumps(out, ensure_ascii=False)}", flush=True)
    return out


def get(d: dict[str, Any], path: str) -> float | None:
    cur: Any = d
    for k in path.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur if isinstance(cur, int | float) else None


MEASURES = [
    # label, path in a budget's result, goal key or None
    (
        "sysbench cpu, 1 thread (events/s; published: Pi 3B+ ~690, Pi 4 ~1,480)",
        "sysbench.events_per_s",
        None,
    ),
    (
        "kiosk: start -> first frame of home (s)",
        "kiosk.start_to_first_frame_s",
        "kiosk.first_frame_s",
    ),
    ("kiosk: card read -> list on screen, p50 (ms)", "kiosk.card_to_list_ms.p50", None),
    (
        "kiosk: card read -> list on screen, max (ms)",
        "kiosk.card_to_list_ms.max",
        "kiosk.card_to_list_ms",
    ),
    ("kiosk: first card read after start -> list (ms)", "kiosk.first_read_to_list_ms", None),
    (
        "kiosk restarted on its data: first card read after start -> list (ms)",
        "kiosk.restart.first_read_to_list_ms",
        None,
    ),
    ("kiosk: Enter -> ticket bytes, p50 (ms)", "kiosk.enter_to_ticket_ms.p50", None),
    (
        "kiosk: Enter -> ticket bytes, max (ms)",
        "kiosk.enter_to_ticket_ms.max",
        "kiosk.enter_to_ticket_ms",
    ),
    ("kiosk: CPU-seconds used to the first frame", "kiosk.cpu_s_at_first_frame", None),
    ("kiosk: VmRSS at the first frame (MB)", "kiosk.memory_at_first_frame.rss_mb", None),
    ("kiosk: VmRSS after the reads (MB)", "kiosk.memory.rss_mb", "kiosk.rss_mb"),
    ("kiosk: of which Mesa/LLVM/GL libraries (MB)", "kiosk.memory.gl_mb", None),
    (
        "kiosk: start -> settled (documents read, guide initials made) (s)",
        "kiosk.start_to_settled_s",
        None,
    ),
    ("kiosk: CPU while idle on home, settled (share of one core)", "kiosk.idle_cpu_share", None),
    ("pad headless: start -> online at broker (s)", "pad.start_to_online_s", None),
    ("pad headless: CPU-seconds used to online", "pad.cpu_s_at_online", None),
    ("pad headless: key -> broker p50 (ms)", "pad.key_to_broker_ms.p50", None),
    (
        "pad headless: key -> broker p99 (ms)",
        "pad.key_to_broker_ms.p99",
        "pad.key_to_broker_p99_ms",
    ),
    ("raw paho publisher: trigger -> broker p99 (ms)", "raw.key_to_broker_ms.p99", None),
    ("pad headless: VmRSS after the presses (MB)", "pad.memory.rss_mb", "pad.rss_mb"),
    ("pad UI: CPU while idle (share of one core)", "pad_ui.idle_cpu_share", None),
    ("pad UI: start -> first frame (s)", "pad_ui.start_to_first_frame_s", None),
    (
        "pad UI: key -> broker p99, presses 50 ms after the last event (ms)",
        "pad_ui.key_to_broker_ms.p99",
        None,
    ),
    (
        "pad UI: key -> broker p50, presses 1.5 s apart (ms)",
        "pad_ui.key_to_broker_paced_ms.p50",
        None,
    ),
    (
        "pad UI: key -> broker p99, presses 1.5 s apart (ms)",
        "pad_ui.key_to_broker_paced_ms.p99",
        "pad_ui.key_to_broker_p99_ms",
    ),
    ("pad UI: VmRSS (MB)", "pad_ui.memory.rss_mb", "pad_ui.rss_mb"),
    (
        "pad UI, Mesa's threads outside the quota: key -> broker p50, 1.5 s apart (ms)",
        "pad_ui_gpu.key_to_broker_paced_ms.p50",
        None,
    ),
    (
        "pad UI, Mesa's threads outside the quota: key -> broker p99, 1.5 s apart (ms)",
        "pad_ui_gpu.key_to_broker_paced_ms.p99",
        None,
    ),
    (
        "kiosk, Mesa's threads outside the quota: start -> first frame (s)",
        "kiosk_gpu.start_to_first_frame_s",
        None,
    ),
    (
        "kiosk, Mesa's threads outside the quota: card read -> list, p50 (ms)",
        "kiosk_gpu.card_to_list_ms.p50",
        None,
    ),
    (
        "kiosk, Mesa's threads outside the quota: card read -> list, max (ms)",
        "kiosk_gpu.card_to_list_ms.max",
        None,
    ),
    (
        "kiosk, Mesa's threads outside the quota: Enter -> ticket, max (ms)",
        "kiosk_gpu.enter_to_ticket_ms.max",
        None,
    ),
    ("pad UI: of which Mesa/LLVM/GL libraries (MB)", "pad_ui.memory.gl_mb", None),
    ("raw paho publisher: VmRSS (MB)", "raw.memory.rss_mb", None),
    (
        "bare Kivy app (800x480, CJK font): start -> first frame (s)",
        "kivy_bare.start_to_first_frame_s",
        None,
    ),
    ("bare Kivy app: VmRSS (MB)", "kivy_bare.memory.rss_mb", None),
    ("bare Kivy app: of which Mesa/LLVM/GL libraries (MB)", "kivy_bare.memory.gl_mb", None),
    ("pad UI: VmRSS over the bare Kivy app (MB)", "floor.pad_ui_over_bare_mb", None),
    ("kiosk: VmRSS over the bare Kivy app (MB)", "floor.kiosk_over_bare_mb", None),
    ("pad headless: VmRSS over the raw paho publisher (MB)", "floor.pad_over_raw_mb", None),
]


def floors(out: dict[str, Any]) -> dict[str, float]:
    """What each app adds to its floor in one budget: the pad's screen and the kiosk over the
    bare Kivy app, the headless pad over the raw paho publisher (VmRSS, MB)."""
    pairs = {
        "pad_ui_over_bare_mb": ("pad_ui.memory.rss_mb", "kivy_bare.memory.rss_mb"),
        "kiosk_over_bare_mb": ("kiosk.memory.rss_mb", "kivy_bare.memory.rss_mb"),
        "pad_over_raw_mb": ("pad.memory.rss_mb", "raw.memory.rss_mb"),
    }
    res = {}
    for key, (app, floor) in pairs.items():
        a, f = get(out, app), get(out, floor)
        if a is not None and f is not None:
            res[key] = round(a - f, 1)
    return res


def verdicts(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each goal at the Pi 3-class budget: the measure, the goal, met or missed."""
    out: dict[str, dict[str, Any]] = {}
    at = result["budgets"].get(GOAL_BUDGET, {})
    for _label, path, goal in MEASURES:
        if goal is None:
            continue
        v = get(at, path)
        out[goal] = {
            "value": v,
            "goal": GOALS[goal],
            "met": None if v is None else v <= GOALS[goal],
        }
    return out


def table(result: dict[str, Any]) -> str:
    base = result["budgets"].get("unconstrained", {})
    names = [n for n, _ in BUDGETS if n in result["budgets"]]
    rows = [
        "| measure | " + " | ".join(names) + " | ratio pi4 / pi3 to unconstrained | goal at pi3 |",
        "|---|" + "---|" * len(names) + "---|---|",
    ]
    for label, path, goal in MEASURES:
        vals = [get(result["budgets"][n], path) for n in names]
        if all(v is None for v in vals):
            continue  # a scenario left out (--only) or failed (its error is in the JSON)
        b = get(base, path)
        ratios = []
        for n in ("pi4", "pi3"):
            v = get(result["budgets"].get(n, {}), path)
            ratios.append(f"{v / b:.1f}x" if v is not None and b else "—")
        g = "—"
        if goal is not None:
            v3 = get(result["budgets"].get(GOAL_BUDGET, {}), path)
            mark = "?" if v3 is None else ("met" if v3 <= GOALS[goal] else "**missed**")
            g = f"≤ {GOALS[goal]:g} {mark}"
        cells = ["—" if v is None else f"{v:g}" for v in vals]
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {' / '.join(ratios)} | {g} |")
    return "\n".join(rows)


PACKAGES = ("careterm", "terminal", "drivers", "rating_pad", "kiosk", "provisioning", "central")


def byte_code() -> str:
    """The project's byte-code, as `scripts/bootstrap` leaves it on a device: without it every
    start compiles each module again when PYTHONDONTWRITEBYTECODE is set (this machine sets it),
    which is not what a device pays."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    ok = all(compileall.compile_dir(root / p, quiet=2) for p in PACKAGES)
    return "compiled" if ok else "some modules did not compile"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="few presses and card reads (smoke run)")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument(
        "--period-ms",
        type=float,
        default=10.0,
        help="CFS period (default 10 ms: the quota comes in 1 ms / 2.5 ms slices, not 10 / 25)",
    )
    ap.add_argument(
        "--only",
        help="comma-separated subset of: " + ",".join(SCENARIOS),
    )
    ap.add_argument("--budgets", help="comma-separated subset of: unconstrained,pi4,pi3")
    args = ap.parse_args()
    # SIGTERM (run_all's timeout, a user) unwinds through the finally blocks: the app
    # processes, the broker, Xvfb and the cgroups go away with the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    compiled = byte_code()

    result: dict[str, Any] = {
        "bench": "pi_budget",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": loadavg(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "goals_at": GOAL_BUDGET,
        "goals": GOALS,
        "byte_code": compiled,
    }
    cgroups = Cgroups()
    if not cgroups.version:
        result["skipped"] = cgroups.why
        print(f"pi_budget: SKIPPED: {cgroups.why}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return 0
    period_us = round(args.period_ms * 1000)
    result["cgroup"] = {
        "version": cgroups.version,
        "root": str(cgroups.root),
        "period_us": period_us,
    }
    only = set((args.only or ",".join(SCENARIOS)).split(","))
    wanted = set((args.budgets or "unconstrained,pi4,pi3").split(","))
    have_x = shutil.which("Xvfb") is not None
    if not have_x and only & UI_SCENARIOS:
        result["ui_skipped"] = "no Xvfb: the pad UI and kiosk scenarios need an X server"
        print(f"pi_budget: {result['ui_skipped']}")
        only -= UI_SCENARIOS
    if cgroups.version != 1 and only & {"pad_ui_gpu", "kiosk_gpu"}:
        result["gpu_skipped"] = "moving single threads out of the quota needs cgroup v1 here"
        print(f"pi_budget: {result['gpu_skipped']}")
        only -= {"pad_ui_gpu", "kiosk_gpu"}
    result["budgets"] = {}
    with tempfile.TemporaryDirectory(prefix="pibudget-") as d:
        tmp = Path(d)
        broker = Broker(tmp / "broker").start()
        try:
            with xvfb() if have_x else nullcontext() as display:
                for name, share in BUDGETS:
                    if name not in wanted:
                        continue
                    print(
                        f"== {name} ({'no quota' if share is None else f'{share:.0%} of a core'})"
                    )
                    out: dict[str, Any] = {"share": share, "loadavg_before": loadavg()}
                    for what, scenario in SCENARIOS.items():
                        if what not in only:
                            continue
                        run = Run(
                            name,
                            tmp,
                            broker,
                            cgroups.make(f"{name}-{what}", share, period_us),
                            presses=30 if args.quick else 150,
                            kiosk_reads=3 if args.quick else 10,
                            display=display,
                            gpu=(
                                cgroups.make(f"{name}-{what}-gl", None, period_us)
                                if what.endswith("_gpu")
                                else None
                            ),
                        )
                        out[what] = guarded(what, scenario, run)
                        run.cg.remove()
                        if run.gpu is not None:
                            run.gpu.remove()
                    out["floor"] = floors(out)
                    result["budgets"][name] = out
        finally:
            broker.stop()
            cgroups.remove_all()
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["loadavg_after"] = loadavg()
    result["verdicts"] = verdicts(result)
    print(table(result))
    missed = [k for k, v in result["verdicts"].items() if v["met"] is False]
    unknown = [k for k, v in result["verdicts"].items() if v["met"] is None]
    if unknown:
        print(f"goals at {GOAL_BUDGET} not measured: {unknown}")
    print(
        f"goals at {GOAL_BUDGET}: missed {missed}"
        if missed
        else f"goals at {GOAL_BUDGET}: none missed"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
