"""A plausible site for the console, stored through the collector's own code (no broker):
statuses, telemetry, today's prompted ratings, expired prompts and alerts."""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.engine import Engine

from central.accounting import Accounting, Batch
from central.db import devices
from central.messages import parse_event, parse_status, parse_telemetry
from tests.conftest import now_clear_of_midnight

SITE = "main"
TZ = ZoneInfo("Asia/Shanghai")
WINDOWS = {  # window -> (device, clerk, name, quality)
    "W01": ("pad-w01", "E1001", "王芳", 0.95),
    "W02": ("pad-w02", "E1002", "李娜", 0.90),
    "W03": ("pad-w03", "E1003", "张伟", 0.70),
    "W04": ("pad-w04", "E1004", "刘洋", 0.93),
    "W05": ("pad-w05", "E1005", "陈静", 0.84),
    "W06": ("pad-w06", "E1006", "杨帆", 0.80),
}
STAFF = [{"staff": s, "name": n} for s, n in ((v[1], v[2]) for v in WINDOWS.values())]
REASONS = ["等候时间长", "服务态度差", "业务不熟练", "其他"]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, TZ).isoformat(timespec="milliseconds")


@dataclass
class Device:
    """Builds one device's envelopes with contiguous seqs, as a real outbox would."""

    id: str
    role: str = "rating_pad"
    seq: int = 0
    envelopes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def event(self, etype: str, data: dict[str, Any], at: float, kind: str = "") -> str:
        self.seq += 1
        eid = str(uuid.uuid4())
        env = {
            "v": 1,
            "id": eid,
            "seq": self.seq,
            "device": self.id,
            "site": SITE,
            "type": etype,
            "ts": iso(at),
            "clock_synced": True,
            "data": data,
        }
        leaf = f"alerts/{kind}" if etype == "alert" else f"events/{etype}"
        self.envelopes.append((f"careterm/{SITE}/{self.id}/{leaf}", env))
        return eid

    def alert(self, kind: str, severity: str, message: str, at: float, **details: Any) -> str:
        data = {"kind": kind, "severity": severity, "message": message, **details}
        return self.event("alert", data, at, kind)


def store_envelopes(engine: Engine, items: list[tuple[str, dict[str, Any]]]) -> None:
    books = Accounting(engine, lambda topic, body, retain: False)
    batch = Batch()
    for topic, env in items:
        batch.events.append(parse_event(topic, json.dumps(env, ensure_ascii=False).encode()))
    books.store_batch(batch)


def store_status(
    engine: Engine,
    device: str,
    state: str,
    session: int,
    at: float,
    role: str = "rating_pad",
    reason: str | None = None,
    version: str = "0.1.0",
    seen: float | None = None,
) -> None:
    body = {
        "v": 1,
        "state": state,
        "reason": reason,
        "role": role,
        "version": version,
        "session": session,
        "ts": iso(at),
    }
    st = parse_status(f"careterm/{SITE}/{device}/status", json.dumps(body).encode())
    Accounting(engine, lambda topic, body, retain: False).store_batch(Batch(statuses=[st]))
    if seen is not None:  # as if the collector had seen it then
        with engine.begin() as conn:
            conn.execute(update(devices).where(devices.c.device == device).values(state_since=seen))


def store_telemetry(engine: Engine, device: str, at: float, **fields: Any) -> None:
    body = {
        "v": 1,
        "ts": iso(at),
        "uptime_s": 3600.0,
        "outbox_depth": 0,
        "oldest_pending_s": None,
        "printer": None,
        "card_reader": "ok",
        "buttons": "ok",
        "clock_synced": True,
        **fields,
    }
    t = parse_telemetry(f"careterm/{SITE}/{device}/telemetry", json.dumps(body).encode())
    Accounting(engine, lambda topic, body, retain: False).store_batch(Batch(telemetry=[t]))


def rating(window: str, staff: str, score: int, prompt: str | None, **kw: Any) -> dict[str, Any]:
    labels = ["不满意", "基本满意", "满意", "非常满意"]
    return {
        "window": window,
        "staff": staff,
        "score": score,
        "scale": 4,
        "label": labels[score - 1],
        "reason": None,
        "reason_asked": score == 1,
        "prompt": prompt,
        "misuse": kw.get("misuse", False),
        "response_ms": kw.get("response_ms"),
    }


def fill_site(engine: Engine, now: float | None = None, seed: int = 3) -> dict[str, Any]:
    """Today until `now` at a busy outpatient site; returns a few ids the tests use."""
    now = time.time() if now is None else now
    rnd = random.Random(seed)
    start = datetime.fromtimestamp(now, TZ).replace(hour=7, minute=30, second=0, microsecond=0)
    t0 = start.timestamp()
    span = max(600.0, now - t0)
    ids: dict[str, Any] = {"alerts": []}
    for window, (dev_id, staff, _, q) in WINDOWS.items():
        dev = Device(dev_id)
        n = 30 + int(span / 900)
        times = sorted(t0 + rnd.random() * (span - 120) for _ in range(n))
        for at in times:
            if rnd.random() < 0.12:  # a prompt nobody answered
                outcome = "expired" if rnd.random() < 0.8 else "superseded"
                dev.event(
                    "prompt",
                    {
                        "prompt": str(uuid.uuid4()),
                        "ticket": f"A{rnd.randint(1, 300):03d}",
                        "window": window,
                        "staff": staff,
                        "outcome": outcome,
                    },
                    at,
                )
                continue
            r = rnd.random()
            score = 4 if r < q * 0.72 else 3 if r < q else 2 if r < q + (1 - q) * 0.55 else 1
            misuse = rnd.random() < 0.03
            prompt = None if misuse else str(uuid.uuid4())
            rid = dev.event(
                "rating",
                rating(
                    window, staff, score, prompt, misuse=misuse, response_ms=rnd.randint(1500, 9000)
                ),
                at,
            )
            if score == 1 and not misuse:
                aid = dev.alert(
                    "dissatisfied",
                    "warning",
                    f"收费处 {window[1:]}号窗口: 不满意",
                    at + 0.1,
                    window=window,
                    staff=staff,
                    score=1,
                    scale=4,
                    label="不满意",
                    reason=None,
                    prompt=prompt,
                )
                dev.event(
                    "reason",
                    {
                        "rating": rid,
                        "window": window,
                        "staff": staff,
                        "reason": rnd.choice(REASONS),
                    },
                    at + 4,
                )
                ids["alerts"].append(aid)
        store_envelopes(engine, dev.envelopes)
        store_status(engine, dev_id, "online", 3, t0 - 3600, seen=t0 - 3600)
        store_telemetry(engine, dev_id, now - rnd.randint(5, 50), printer=None)
    # One pad went away twenty minutes ago; a kiosk is out of paper; another has a backlog.
    store_status(engine, "pad-w06", "offline", 3, t0 - 3600, reason="lost", seen=now - 1260)
    kiosks = [Device("kiosk-01", "kiosk"), Device("kiosk-02", "kiosk"), Device("kiosk-03", "kiosk")]
    for k in kiosks:
        for i in range(20):
            k.event(
                "checkin",
                {
                    "appointment": f"A-{k.id}-{i}",
                    "department_id": "cardio",
                    "queue_no": f"B{i:03d}",
                    "card_kind": "id_card",
                    "token": "0" * 32,
                    "timing": "on_time",
                    "ticket": "printed",
                    "repeat": False,
                },
                t0 + i * 600,
            )
    ids["paper"] = kiosks[1].alert(
        "printer", "critical", "打印机缺纸 paper out", now - 1500, state="error"
    )
    ids["backlog"] = kiosks[2].alert(
        "outbox_backlog", "warning", "23 events waiting for 14 min", now - 300
    )
    ids["help"] = kiosks[0].alert("help", "warning", "门诊大厅 1号自助机 呼叫人工", now - 90)
    for k in kiosks:
        store_envelopes(engine, k.envelopes)
        store_status(engine, k.id, "online", 1, t0 - 7200, role="kiosk", seen=t0 - 7200)
    store_telemetry(engine, "kiosk-01", now - 20, printer="ok", buttons=None)
    store_telemetry(engine, "kiosk-02", now - 30, printer="error", buttons=None)
    store_telemetry(
        engine,
        "kiosk-03",
        now - 12,
        printer="ok",
        buttons=None,
        outbox_depth=23,
        oldest_pending_s=840.0,
    )
    ids["day"] = datetime.fromtimestamp(now, TZ).date().isoformat()
    ids["t0"] = t0
    return ids


def site_now() -> float:
    """The time now for a test that puts events up to an hour before `now` and expects them on
    the site's day (the console and the report take `now` from their caller): the real time,
    but 03:00 at the site while its day is younger than that, and never in a day's last two
    minutes (CI runs whenever a session stops; 16:00 UTC is midnight here)."""
    now = now_clear_of_midnight(TZ)
    return max(now, now.replace(hour=3, minute=0, second=0, microsecond=0)).timestamp()


def ago(minutes: float) -> float:
    return time.time() - timedelta(minutes=minutes).total_seconds()
