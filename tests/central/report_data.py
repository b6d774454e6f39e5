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
    prompt: str | None = None,
    reason_asked: bool | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "window": window,
        "staff": staff,
        "score": score,
        "scale": scale,
        "label": str(score),
        "reason": reason,
        "prompt": prompt,
        "misuse": misuse,
        "response_ms": response_ms,
    }
    if reason_asked is not None:
        data["reason_asked"] = reason_asked
    return data


def reason(rating_id: str, window: str, staff: str | None, text: str | None) -> dict[str, Any]:
    """SPEC 9.3 `reason` event data: the answer to the question after a low score."""
    return {"rating": rating_id, "window": window, "staff": staff, "reason": text}


def prompt_closed(
    prompt: str, window: str, staff: str | None, outcome: str = "expired", ticket: str | None = None
) -> dict[str, Any]:
    """SPEC 9.3 `prompt` event data: a prompt that closed without a rating."""
    return {
        "prompt": prompt,
        "ticket": ticket,
        "window": window,
        "staff": staff,
        "outcome": outcome,
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
LATE = {"W09": ("pad-w09", "E1009", "周杰", "医保窗口", 0.5)}  # opened for the last hour only
REASONS = ["等候时间长", "服务态度差", "业务不熟练", "其他"]


def staff_list() -> list[dict[str, str]]:
    """The published staff list for `--staff` (numbers and names of every window's clerk)."""
    return [{"staff": v[1], "name": v[2]} for v in [*WINDOWS.values(), *LATE.values()]]


def busy_day(day: str = "2026-11-23", seed: int = 7) -> list[dict[str, Any]]:
    """A plausible outpatient day on prompted pads (SPEC 9.3): morning peak, a lunch dip,
    prompts that expire, presses without a prompt, low scores with their reason events, and
    one window that opened for the last hour only (few ratings)."""
    rnd = random.Random(seed)
    out = []
    weights = {7: 3, 8: 10, 9: 14, 10: 13, 11: 9, 12: 3, 13: 5, 14: 9, 15: 8, 16: 6, 17: 2}
    seqs: dict[str, int] = {}

    def emit(device: str, ts: str, data: dict[str, Any], etype: str = "rating") -> str:
        seqs[device] = seqs.get(device, 0) + 1
        out.append(envelope(device, seqs[device], ts, data, etype))
        return out[-1]["id"]

    for window, (device, staff, _, _, q) in [*WINDOWS.items(), *LATE.items()]:
        late = window in LATE
        hours = {17: 2} if late else weights
        for hour, w in hours.items():
            for n in range(w if late else rnd.randint(w, w * 2)):
                minute, second = rnd.randint(0, 58), rnd.randint(0, 59)
                ts = f"{day}T{hour:02d}:{minute:02d}:{second:02d}+08:00"
                later = f"{day}T{hour:02d}:{minute + 1:02d}:{second:02d}+08:00"
                prompt = f"p-{device}-{hour}-{n}"
                if not late and rnd.random() < 0.08:  # nobody pressed: the prompt expired
                    emit(device, later, prompt_closed(prompt, window, staff), "prompt")
                    continue
                if not late and rnd.random() < 0.03:  # a press with no prompt open
                    emit(device, ts, rating(window, staff, 4, misuse=True))
                    continue
                r = rnd.random()
                score = 4 if r < q * 0.7 else 3 if r < q else 2 if r < q + (1 - q) * 0.5 else 1
                if late:
                    score = 4 - 3 * n  # one best, one worst: 50 %
                rid = emit(
                    device,
                    ts,
                    rating(
                        window,
                        staff,
                        score,
                        prompt=prompt,
                        response_ms=rnd.randint(900, 9000),
                        reason_asked=score == 1,
                    ),
                )
                if score == 1:
                    text = rnd.choice(REASONS[:3] * 3 + REASONS[3:] + [None])
                    emit(device, later, reason(rid, window, staff, text), "reason")
    return out
