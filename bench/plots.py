"""PNG plots of the fleet simulator's results: latency distributions and the scale curve.

python bench/plots.py bench/results/fleet.json bench/results/fleet-samples.json docs/bench
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_cdf(samples: dict[str, list[float]], out: Path) -> Path | None:
    """Cumulative distribution of end-to-end latency, careterm uplink vs bare paho, log x."""
    names = [
        n
        for n in ("realistic", "realistic-raw-paho", "10x", "10x-raw-paho", "10x-stock-broker")
        if samples.get(n)
    ]
    if not names:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for n in names:
        v = sorted(max(x, 0.01) for x in samples[n])
        y = [(i + 1) / len(v) for i in range(len(v))]
        style = "--" if n.endswith("raw-paho") else "-"
        ax.plot(v, y, style, label=f"{n} (n={len(v)})")
    ax.set_xscale("log")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.text(ax.get_xlim()[0] * 1.1, 0.975, "p99", color="grey", fontsize=8, va="top")
    ax.set_xlabel("end-to-end latency, record() -> collector (ms, log scale)")
    ax.set_ylabel("fraction of events")
    ax.set_title("1,000 pads + 50 kiosks on one mosquitto: careterm uplink vs bare paho")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", lw=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def scale_curve(fleet: dict[str, Any], out: Path) -> Path | None:
    """Offered event rate vs p50/p99 latency (left) and CPU of each side (right)."""
    rows = [
        s
        for s in fleet["scenarios"]
        if not s["scenario"]["raw"]
        # (runs before main bb3e989 also had an unsynced-site-ack experiment: not on the curve)
        and not s["scenario"].get("unsynced_marks")
        and "stock" not in s["scenario"]["name"]
    ]
    rows.sort(key=lambda s: s["offered_target_per_s"])
    if len(rows) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.2))
    # Target rates on x: past the limit the stores fall behind and fewer events are recorded
    # than scheduled; those points say what was achieved.
    x = [s["offered_target_per_s"] for s in rows]
    ax.plot(x, [s["latency_ms"]["p50"] for s in rows], "o-", color="tab:blue", label="p50 latency")
    ax.plot(x, [s["latency_ms"]["p99"] for s in rows], "s-", color="tab:red", label="p99 latency")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events per second scheduled (1,050 devices; log scale)")
    ax.set_ylabel("end-to-end latency (ms, log scale)")
    ax.grid(True, which="both", lw=0.3)
    for s in rows:
        if s["lost"]:
            ax.annotate(
                f"lost {s['lost']}",
                (s["offered_target_per_s"], s["latency_ms"]["p99"]),
                color="red",
                fontsize=8,
            )
        if s["offered_per_s"] < 0.95 * s["offered_target_per_s"]:
            ax.annotate(
                f"achieved\n{s['offered_per_s']:.0f}/s",
                (s["offered_target_per_s"], s["latency_ms"]["p50"]),
                textcoords="offset points",
                xytext=(-18, -34),
                fontsize=8,
            )
    ax2 = ax.twinx()
    for key, color in (
        ("simulator", "tab:green"),
        ("broker", "tab:purple"),
        ("collector", "tab:orange"),
        ("machine_busy_pct", "black"),
    ):
        scale = 2 if key == "machine_busy_pct" else 1  # machine % is of 2 cores: show as 200 max
        ax2.plot(
            x,
            [s["cpu_pct"][key] * scale for s in rows],
            "^:",
            color=color,
            label=f"CPU {key.replace('_busy_pct', ' (every process, other jobs too)')}",
        )
    ax2.set_ylabel("CPU % (100 = one core; the machine has 2)")
    ax2.set_ylim(0, 210)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.set_title("Scale curve: same fleet, every device faster")
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.27)
    fig.legend(h1 + h2, l1 + l2, loc="lower center", ncol=3, fontsize=8)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def markdown_table(fleet: dict[str, Any]) -> str:
    """The per-scenario table of FLEET.md / BENCHMARKS.md, from fleet.json."""
    head = (
        "| scenario | devices | events/s offered (target) | recorded = received | lost | dup "
        "| latency p50 / p99 ms | store p50 / p99 ms | CPU % broker / sim / collector "
        "| machine busy % (2 cores) | RSS MB broker / sim / collector |"
    )
    rows = [head, "|" + "---|" * 11]
    for s in fleet["scenarios"]:
        sc, lat, st, c, m = s["scenario"], s["latency_ms"], s["store_ms"], s["cpu_pct"], s["rss_mb"]
        rec = (
            f"{s['recorded']:,}"
            if s["recorded"] == s["received_unique"]
            else f"{s['recorded']:,} / {s['received_unique']:,}"
        )
        store = "-" if sc["raw"] else f"{st['p50']} / {st['p99']}"
        rows.append(
            f"| {sc['name']} | {sc['pads'] + sc['kiosks']:,} | {s['offered_per_s']:,} "
            f"({s['offered_target_per_s']:,}) | {rec} | {s['lost']} | {s['duplicated']} "
            f"| {lat['p50']} / {lat['p99']} | {store} | {c['broker']} / {c['simulator']} / "
            f"{c['collector']} | {c['machine_busy_pct']} | {m['broker']} / {m['simulator']:.0f} / "
            f"{m['collector']:.0f} |"
        )
    return "\n".join(rows)


def make_all(fleet_json: Path, samples_json: Path, outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    fleet = json.loads(fleet_json.read_text())
    samples = json.loads(samples_json.read_text()) if samples_json.exists() else {}
    made = [
        latency_cdf(samples, outdir / "fleet-latency-cdf.png"),
        scale_curve(fleet, outdir / "fleet-scale.png"),
    ]
    return [p for p in made if p is not None]


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    for p in make_all(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])):
        print(p)
    print(markdown_table(json.loads(Path(sys.argv[1]).read_text())))
