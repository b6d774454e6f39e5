"""How long the satisfaction figures take: `site report` over a month, the site console's poll.

Fills a database through the collector's own storing code (central.accounting) with a month
of prompted pads (32 pads, about 110,000 ratings, expired prompts, misuse presses, reason
events), then times:
- `careterm site report --from <month> --to <month> --by window|staff|hour --format csv`
  and `--format html` as a process (start-up included);
- the console's `ConsoleData.snapshot` on one day: reading every device, a poll with nothing
  new, and a poll after one pad stored one rating.

    .venv/bin/python bench/figures_bench.py [--db URL] [--keep] [--runs N] [--json out.json]

Without --db it uses a SQLite file in a temporary folder. Give a fresh PostgreSQL database
(`postgresql+psycopg://postgres@127.0.0.1:5432/figures_bench`) to time that instead; an
existing database with ratings is used as it is.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from central.accounting import Accounting, Batch
from central.dashboard.data import ConsoleData
from central.db import open_db, ratings
from central.messages import parse_event

MONTH = ("2026-11-01", "2026-11-30")
TZ = ZoneInfo("Asia/Shanghai")
HOURS = {7: 3, 8: 10, 9: 14, 10: 13, 11: 9, 12: 3, 13: 5, 14: 9, 15: 8, 16: 6, 17: 2}


class Day:
    """One day's envelopes, with contiguous seqs per device as a real outbox would give."""

    ids = 0

    def __init__(self, index: int) -> None:
        self.index = index
        self.envelopes: list[dict[str, Any]] = []
        self.seqs: dict[str, int] = {}

    def emit(self, dev: str, etype: str, ts: str, data: dict[str, Any]) -> str:
        Day.ids += 1
        self.seqs[dev] = self.seqs.get(dev, self.index * 10_000) + 1
        eid = f"0193a1b2-{self.index:04d}-7000-8000-{Day.ids:012d}"
        self.envelopes.append(
            {
                "v": 1,
                "id": eid,
                "seq": self.seqs[dev],
                "device": dev,
                "site": "main",
                "type": etype,
                "ts": ts,
                "clock_synced": True,
                "data": data,
            }
        )
        return eid


def month(pads: int = 32, seed: int = 1) -> Iterator[list[dict[str, Any]]]:
    """One list of envelopes per day."""
    rnd = random.Random(seed)
    first = date.fromisoformat(MONTH[0])
    for d in range(30):
        day = (first + timedelta(days=d)).isoformat()
        out = Day(d)
        emit = out.emit
        for w in range(pads):
            dev, win, staff = f"pad-w{w:02d}", f"W{w:02d}", f"E{1000 + (w + d) % 40}"
            for hour, weight in HOURS.items():
                for k in range(rnd.randint(weight, weight * 2)):
                    minute, second = rnd.randint(0, 58), rnd.randint(0, 59)
                    ts = f"{day}T{hour:02d}:{minute:02d}:{second:02d}+08:00"
                    later = f"{day}T{hour:02d}:{minute + 1:02d}:{second:02d}+08:00"
                    prompt = f"p-{dev}-{day}-{hour}-{k}"
                    who = {"window": win, "staff": staff}
                    if rnd.random() < 0.08:
                        closed = {"prompt": prompt, "ticket": None, **who, "outcome": "expired"}
                        emit(dev, "prompt", later, closed)
                        continue
                    if rnd.random() < 0.03:
                        press = {"score": 4, "scale": 4, "label": "4", "misuse": True}
                        emit(
                            dev, "rating", ts, {**who, **press, "prompt": None, "response_ms": None}
                        )
                        continue
                    r = rnd.random()
                    score = 4 if r < 0.6 else 3 if r < 0.85 else 2 if r < 0.92 else 1
                    rid = emit(
                        dev,
                        "rating",
                        ts,
                        {
                            **who,
                            "score": score,
                            "scale": 4,
                            "label": str(score),
                            "prompt": prompt,
                            "misuse": False,
                            "response_ms": rnd.randint(900, 9000),
                            "reason_asked": score == 1,
                        },
                    )
                    if score == 1:
                        text = rnd.choice(["等候时间长", "服务态度差", None])
                        emit(dev, "reason", later, {"rating": rid, **who, "reason": text})
        yield out.envelopes


def store(books: Accounting, envelopes: list[dict[str, Any]]) -> None:
    for i in range(0, len(envelopes), 2000):
        batch = Batch()
        for env in envelopes[i : i + 2000]:
            topic = f"careterm/main/{env['device']}/events/{env['type']}"
            batch.events.append(parse_event(topic, json.dumps(env, ensure_ascii=False).encode()))
        books.store_batch(batch)


def timed(f: Callable[[], Any], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4)}


def report_run(db: str, *args: str) -> None:
    cmd = [sys.executable, "-m", "careterm", "site", "report", "--db", db, *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="", help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary SQLite file")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="figures-bench-"))
    db = args.db or f"sqlite:///{folder}/month.db"
    engine = open_db(db)
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(ratings)).scalar_one()
    results: dict[str, Any] = {"db": engine.dialect.name}
    if not have:
        t = time.perf_counter()
        books = Accounting(engine, lambda topic, body, retain: False)
        for day in month():
            store(books, day)
        results["fill_s"] = round(time.perf_counter() - t, 1)
    with engine.connect() as conn:
        results["ratings"] = conn.execute(select(func.count()).select_from(ratings)).scalar_one()
    period = ("--from", MONTH[0], "--to", MONTH[1])
    for by in ("window", "staff", "hour"):
        results[f"report_csv_by_{by}"] = timed(
            lambda by=by: report_run(db, *period, "--by", by, "--format", "csv"), args.runs
        )
    results["report_html"] = timed(lambda: report_run(db, *period, "--format", "html"), args.runs)

    now = datetime(2026, 11, 15, 17, 0, tzinfo=TZ).timestamp()
    results["console_read_every_device"] = timed(
        lambda: ConsoleData(engine, tz=TZ).snapshot(now), args.runs
    )
    console = ConsoleData(engine, tz=TZ)
    console.snapshot(now)
    results["console_poll_nothing_new"] = timed(lambda: console.snapshot(now + 1), args.runs)
    books = Accounting(engine, lambda topic, body, retain: False)
    polls = []
    for i in range(args.runs):
        env = {
            "v": 1,
            "id": f"0193a1b2-ffff-7000-8000-{i:012d}",
            "seq": 5_000_000 + i,
            "device": "pad-w03",
            "site": "main",
            "type": "rating",
            "ts": "2026-11-15T16:59:00+08:00",
            "clock_synced": True,
            "data": {"window": "W03", "staff": "E1003", "score": 4, "scale": 4, "label": "4"}
            | {"prompt": None, "misuse": False, "response_ms": None},
        }
        store(books, [env])
        t = time.perf_counter()
        console.snapshot(now + 2 + i)
        polls.append(time.perf_counter() - t)
    results["console_poll_after_one_rating"] = {
        "median_s": round(statistics.median(polls), 4),
        "min_s": round(min(polls), 4),
    }
    engine.dispose()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.db and not args.keep:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
