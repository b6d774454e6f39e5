"""Run every benchmark with one command; write bench/results/latest.json and docs/bench/*.png.

  .venv/bin/python bench/run_all.py            # full run, about 45 minutes
  .venv/bin/python bench/run_all.py --quick    # smoke run, about 20 minutes

The Pi-budget entry needs writable cgroups (root); without them it records why it skipped.

Each benchmark runs as its own subprocess with `--json`, so one failing does not hide the
others; its exit code and the tail of its output are kept in latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PLOTS = ROOT / "docs" / "bench"


def run(
    name: str, cmd: list[str], out: Path, timeout: float, stdout_json: bool = False
) -> dict[str, Any]:
    """Run one benchmark; its result is the JSON file `out` (or, with `stdout_json`, the last
    line of its output that parses as a JSON object, saved to `out`)."""
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        p = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        code, text = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        code, text = -1, f"timed out after {timeout:.0f}s\n{e.stdout or ''}"
    elapsed = round(time.monotonic() - t0, 1)
    print(f"   exit {code} in {elapsed}s", flush=True)
    if name == "fleet":
        print(
            "\n".join(line for line in text.splitlines() if line.startswith(("[", "  "))),
            flush=True,
        )
    entry: dict[str, Any] = {"exit": code, "elapsed_s": elapsed}
    if stdout_json and code == 0:
        for line in reversed(text.splitlines()):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
                break
    if out.exists() and out.stat().st_mtime >= time.time() - elapsed - 5:
        entry["result"] = json.loads(out.read_text())
    if code != 0:
        entry["output_tail"] = text[-3000:]
    return entry


def git_head() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True
        ).stdout.strip()
    except OSError:
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small counts and short scenarios")
    ap.add_argument("--no-fleet", action="store_true", help="skip the fleet simulator")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the busiest fleet scenario's first worker (needs py-spy)",
    )
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    PLOTS.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    quick = ["--quick"] if args.quick else []
    latest: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git_head(),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "machine": os.uname().machine,
        "loadavg_before": Path("/proc/loadavg").read_text().strip(),
    }
    latest["uplink"] = run(
        "uplink",
        [
            py,
            "bench/uplink_bench.py",
            *quick,
            "--json",
            str(RESULTS / "uplink.json"),
            "--plot",
            str(PLOTS / "uplink-latency.png"),
        ],
        RESULTS / "uplink.json",
        600,
    )
    # Issue 16 parts 3 and 4: the alert path (pad -> collector -> `site alerts --db` -> webhook)
    # and the backlog after an outage (first backlog event at the site; the 10,000-event drain
    # itself is in the uplink entry above).
    latest["reconnect"] = run(
        "reconnect",
        [py, "bench/reconnect_bench.py", *quick, "--json", str(RESULTS / "reconnect.json")],
        RESULTS / "reconnect.json",
        900,
    )
    latest["alerts"] = run(
        "alerts",
        [py, "bench/alert_bench.py", *quick, "--json", str(RESULTS / "alerts.json")],
        RESULTS / "alerts.json",
        900,
    )
    latest["alerts_pg"] = run(  # the same on PostgreSQL (127.0.0.1:5432); skipped without one
        "alerts-pg",
        [py, "bench/alert_bench.py", "--pg", *quick, "--json", str(RESULTS / "alerts-pg.json")],
        RESULTS / "alerts-pg.json",
        900,
    )
    # Issue 16 part 2: `site collect` draining a backlog on PostgreSQL (1 and 2 collectors,
    # skipped with a note when no server answers) and SQLite, against raw paho and raw inserts.
    latest["ingest"] = run(
        "ingest",
        [py, "bench/ingest_bench.py", *quick, "--json", str(RESULTS / "ingest.json")],
        RESULTS / "ingest.json",
        1200,
    )
    # The satisfaction figures: `site report` over a month and the site console's polls.
    latest["figures"] = run(
        "figures",
        [
            py,
            "bench/figures_bench.py",
            *(["--runs", "1"] if args.quick else []),
            "--json",
            str(RESULTS / "figures.json"),
        ],
        RESULTS / "figures.json",
        900,
    )
    if (ROOT / "bench" / "kiosk_bench.py").exists():
        # It opens the real kiosk window: under Xvfb unless a display is there already.
        xvfb = (
            [] if os.environ.get("DISPLAY") else ["xvfb-run", "-a", "-s", "-screen 0 1920x1920x24"]
        )
        runs = ["--runs", "7"] if args.quick else []
        latest["kiosk"] = run(
            "kiosk",
            [*xvfb, py, "bench/kiosk_bench.py", *runs],
            RESULTS / "kiosk.json",
            600,
            stdout_json=True,
        )
    # Pi-class CPU budget (issue 16): kiosk and pads inside cgroup CPU quotas. It needs
    # writable cgroups; without them it prints why, records "skipped" and exits 0.
    latest["pi_budget"] = run(
        "pi_budget",
        [py, "bench/pi_budget.py", *quick, "--json", str(RESULTS / "pi_budget.json")],
        RESULTS / "pi_budget.json",
        1800,
    )
    skipped = latest["pi_budget"].get("result", {}).get("skipped")
    if skipped:
        print(f"   pi_budget skipped: {skipped}", flush=True)
    elif latest["pi_budget"]["exit"] != 0:
        print("   pi_budget FAILED (see latest.json)", file=sys.stderr, flush=True)
    if not args.no_fleet:
        cmd = [
            py,
            "bench/fleet_sim.py",
            "--suite",
            *quick,
            "--json",
            str(RESULTS / "fleet.json"),
            "--samples",
            str(RESULTS / "fleet-samples.json"),
        ]
        if args.profile:
            cmd += ["--profile", str(RESULTS / "fleet-profile.txt")]
        latest["fleet"] = run("fleet", cmd, RESULTS / "fleet.json", 1200)
        if "result" in latest["fleet"]:
            sys.path.insert(0, str(ROOT / "bench"))
            from plots import make_all

            latest["plots"] = [
                str(p.relative_to(ROOT))
                for p in make_all(RESULTS / "fleet.json", RESULTS / "fleet-samples.json", PLOTS)
            ]
    latest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS / 'latest.json'}")
    failed = [k for k, v in latest.items() if isinstance(v, dict) and v.get("exit", 0) != 0]
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
