"""The Pi-budget benchmark's pure helpers: where CPU quotas can be set, what is written to set
them, how memory is read, and how presses are paced. No timed goals here: they live in
bench/pi_budget.py."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pb() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pi_budget", ROOT / "bench" / "pi_budget.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pi_budget"] = module
    spec.loader.exec_module(module)
    return module


HYBRID = """tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_mounts_give_the_v1_cpu_hierarchy_and_the_v2_mount(pb: ModuleType) -> None:
    assert pb.cgroup_mounts(HYBRID) == (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/unified"))
    pure_v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n"
    assert pb.cgroup_mounts(pure_v2) == (None, Path("/sys/fs/cgroup"))
    joint = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
    assert pb.cgroup_mounts(joint) == (Path("/sys/fs/cgroup/cpu,cpuacct"), None)
    assert pb.cgroup_mounts("proc /proc proc rw 0 0\n") == (None, None)


def test_a_share_of_one_core_becomes_a_quota_per_period(pb: ModuleType) -> None:
    assert pb.cpu_max_text(0.10, 10_000) == "1000 10000"
    assert pb.cpu_max_text(0.25, 100_000) == "25000 100000"
    assert pb.cpu_max_text(None, 10_000) == "max 10000"
    assert pb.v1_quota_us(0.25, 10_000) == 2500
    assert pb.v1_quota_us(None, 10_000) == -1
    # the kernel refuses quotas under 1 ms
    assert pb.v1_quota_us(0.05, 10_000) == 1000


def test_v2_without_the_cpu_controller_falls_back_to_v1(pb: ModuleType, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "cpu", tmp_path / "unified"
    v1.mkdir()
    v2.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("-1")
    (v2 / "cgroup.controllers").write_text("memory pids\n")
    mounts = f"cgroup {v1} cgroup rw,cpu 0 0\ncgroup2 {v2} cgroup2 rw 0 0\n"
    groups = pb.Cgroups(mounts)
    assert groups.version == 1, groups.why
    cg = groups.make("pi3", 0.10, 10_000)
    assert (cg.path / "cpu.cfs_period_us").read_text() == "10000"
    assert (cg.path / "cpu.cfs_quota_us").read_text() == "1000"
    assert cg.wrap(["true"])[-1] == "true" and str(cg.procs) in cg.wrap(["true"])


def test_v2_with_the_cpu_controller_writes_cpu_max(pb: ModuleType, tmp_path: Path) -> None:
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (v2 / "cgroup.subtree_control").write_text("memory\n")
    groups = pb.Cgroups(f"cgroup2 {v2} cgroup2 rw 0 0\n")
    assert groups.version == 2, groups.why
    assert (v2 / "cgroup.subtree_control").read_text() == "+cpu"
    assert (groups.make("pi4", 0.25, 10_000).path / "cpu.max").read_text() == "2500 10000"


def test_no_cpu_controller_is_a_reason_to_skip(pb: ModuleType, tmp_path: Path) -> None:
    groups = pb.Cgroups("proc /proc proc rw 0 0\n")
    assert groups.version == 0
    assert "no writable CPU controller" in groups.why


def test_memory_is_read_from_status_and_split_by_smaps(pb: ModuleType) -> None:
    status = "Name:\tpython\nVmHWM:\t  81000 kB\nVmRSS:\t   79600 kB\n"
    assert pb.status_kb(status, "VmRSS") == 79600
    assert pb.status_kb(status, "VmSwap") is None
    smaps = """55d0-55e0 r-xp 00000000 08:01 1 /usr/bin/python3.11
Rss:                1000 kB
7f00-7f10 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1
Rss:               30000 kB
7f10-7f20 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so
Rss:                9000 kB
7f20-7f30 rw-p 00000000 00:00 0 [heap]
Rss:                5000 kB
7f30-7f40 rw-p 00000000 00:00 0
Rss:                 700 kB
"""
    assert pb.smaps_rss_kb(smaps) == {"gl": 39000, "other_libs": 1000, "anon": 5700}


def test_a_v2_that_refuses_the_probe_falls_back_to_v1(pb: ModuleType, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "cpu", tmp_path / "unified"
    v1.mkdir()
    v2.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("-1")
    (v2 / "cgroup.controllers").write_text("cpu\n")
    (v2 / "cgroup.subtree_control").write_text("cpu\n")
    (v2 / f"careterm-pibudget-{os.getpid()}-probe").write_text("")  # mkdir there fails
    groups = pb.Cgroups(f"cgroup {v1} cgroup rw,cpu 0 0\ncgroup2 {v2} cgroup2 rw 0 0\n")
    assert (groups.version, groups.root) == (1, v1), groups.why


NAMED_THREADS = """
import ctypes, json, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
tids, ready = {}, threading.Barrier(3)

def named(name):
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: the name /proc/<tid>/comm shows
    tids[name] = threading.get_native_id()
    ready.wait()
    sys.stdin.read()  # until the test closes the pipe

for n in ("llvmpipe-0", "other-0"):
    threading.Thread(target=named, args=(n,), daemon=True).start()
ready.wait()
print(json.dumps(tids), flush=True)
sys.stdin.read()
"""


def test_only_mesas_rendering_threads_are_moved_out_of_the_quota(
    pb: ModuleType, tmp_path: Path
) -> None:
    """GpuThreads writes the id of each thread named `llvmpipe-N` (and no other) to the
    unconstrained cgroup's `tasks`, once. The threads live in a child process of their own: this
    one may have real llvmpipe threads (a display test's Kivy window ran in it before)."""
    import json
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-c", NAMED_THREADS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        tids: dict[str, int] = json.loads(child.stdout.readline())
        (tmp_path / "tasks").write_text("")
        mover = pb.GpuThreads(child.pid, pb.Cgroup(tmp_path))
        try:
            deadline = time.monotonic() + 10
            while tids["llvmpipe-0"] not in mover.moved and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            assert mover.stop() == 1
        assert mover.moved == {tids["llvmpipe-0"]}
        assert (tmp_path / "tasks").read_text() == str(tids["llvmpipe-0"])
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)


def test_presses_one_at_a_time_wait_the_gap_after_each_event(pb):
    """The pad's presses "1.5 s apart" were sent 50 ms apart once (the gap was not used): the
    trigger times must be at least the gap apart, each after the last message arrived."""

    class Rx:
        count = 0

    rx = Rx()
    calls: list[float] = []

    def trigger(i: int) -> None:
        calls.append(time.monotonic())
        rx.count += 1  # its message "arrived" at once

    sent = pb.one_at_a_time(3, rx, trigger, gap_s=0.3)
    assert len(sent) == 3 and sent == sorted(sent)
    assert all(b - a >= 0.3 for a, b in zip(calls, calls[1:], strict=False))


def test_floors_are_what_each_app_adds_to_its_bare_baseline(pb: ModuleType) -> None:
    out = {
        "pad": {"memory": {"rss_mb": 41.7}},
        "raw": {"memory": {"rss_mb": 22.3}},
        "pad_ui": {"memory": {"rss_mb": 179.0}},
        "kivy_bare": {"memory": {"rss_mb": 147.4}},
        "kiosk": {"error": "RuntimeError: no home frame"},
    }
    # The kiosk failed: no figure for it, rather than one against a missing value.
    assert pb.floors(out) == {"pad_ui_over_bare_mb": 31.6, "pad_over_raw_mb": 19.4}
