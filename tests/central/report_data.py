"""Generated ratings fed through the collector's own storing code (no broker needed)."""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy.engine import Engine

from central.accounting import Accounting, Batch
from central.messages import parse_event

_counter = [0]


def envelope(
    device: str,
    seq: int,
    ts: str,
    data: dict[str, Any],
    etype: str = "rating",
    eid: str | None = None,
) -> dict[str, Any]:
    _counter[0] += 1
    return {
        "v": 1,
        "id": eid or f"0193a1b2-0000-7000-8000-{_counter[0]:012d}",
        "seq": seq,
        "device": device,
        "site": "main",
        "type": etype,
        "ts": ts,
        "clock_synced": True,
        "data": data,
    }


def store(engine: Engine, envelopes: list[dict[str, Any]]) -> None:
    books = Accounting(engine, lambda topic, body, retain: False)
    batch = Batch()
    for env in envelopes:
        topic = f"careterm/{env['site']}/{env['device']}/events/{env['type']}"
        batch.events.append(parse_event(topic, json.dumps(env, ensure_ascii=False).encode()))
    books.store_batch(batch)


def rating(
    window: str,
    staff: str | None,
    score: int,
    scale: int = 4,
    reason: str | None = None,
    misuse: bool = False,
    response_ms: int | None = None,
) -> dict[str, Any]:
    return {
        "window": window,
        "staff": staff,
        "score": score,
        "scale": scale,
        "label": str(score),
        "reason": reason,
        "prompt": None,
        "misuse": misuse,
        "response_ms": response_ms,
    }


WINDOWS = {  # window -> (device, clerk, clerk name, department, mean quality)
    "W01": ("pad-w01", "E1001", "王芳", "收费处", 0.93),
    "W02": ("pad-w02", "E1002", "李娜", "收费处", 0.88),
    "W03": ("pad-w03", "E1003", "张伟", "收费处", 0.72),
    "W04": ("pad-w04", "E1004", "刘洋", "挂号处", 0.95),
    "W05": ("pad-w05", "E1005", "陈静", "挂号处", 0.85),
    "W06": ("pad-w06", "E1006", "杨帆", "医保窗口", 0.80),
    "W07": ("pad-w07", "E1007", "赵敏", "医保窗口", 0.91),
    "W08": ("pad-w08", "E1008", "孙磊", "药房", 0.77),
}
REASONS = ["等候时间长", "服务态度差", "业务不熟练", "其他"]


def busy_day(day: str = "2026-11-23", seed: int = 7) -> list[dict[str, Any]]:
    """A plausible outpatient day: morning peak, a lunch dip, some misuse and low scores."""
    rnd = random.Random(seed)
    out = []
    weights = {7: 3, 8: 10, 9: 14, 10: 13, 11: 9, 12: 3, 13: 5, 14: 9, 15: 8, 16: 6, 17: 2}
    for window, (device, staff, _, _, q) in WINDOWS.items():
        seq = 0
        for hour, w in weights.items():
            for _ in range(rnd.randint(w, w * 2)):
                seq += 1
                r = rnd.random()
                score = 4 if r < q * 0.7 else 3 if r < q else 2 if r < q + (1 - q) * 0.5 else 1
                reason = rnd.choice(REASONS[:3] * 3 + REASONS[3:]) if score == 1 else None
                ts = f"{day}T{hour:02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}+08:00"
                misuse = rnd.random() < 0.03
                out.append(
                    envelope(
                        device,
                        seq,
                        ts,
                        rating(
                            window,
                            staff,
                            score,
                            reason=reason,
                            misuse=misuse,
                            response_ms=None if misuse else rnd.randint(900, 9000),
                        ),
                    )
                )
    return out
