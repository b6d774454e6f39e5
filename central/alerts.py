"""`site alerts`: every alert stored in the site database -> a webhook (SMS gateway, chat bot).

The collector gives each new alert a row in `alert_deliveries` in the same transaction that
stores it, numbered per device in storing order. This forwarder keeps its position there:
it POSTs the undelivered alerts of each device in that order and marks each one delivered
only after a 2xx, so an alert goes out at least once (the `Idempotency-Key` header, the
event id, lets the receiver drop a repeat), however long the forwarder or the webhook was
down. The database is the site's one durable queue: nothing of it lives in a broker session.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from central.db import alert_deliveries, events
from terminal import __version__
from terminal.backoff import Backoff

log = logging.getLogger("careterm.alerts")

HTTP_TIMEOUT_S = 10.0
FETCH = 500


@dataclass
class AlertOptions:
    webhook: str = ""
    retry_min_s: float = 1.0
    retry_max_s: float = 300.0
    poll_s: float = 0.2
    staff_names: dict[str, str] = field(default_factory=dict)  # staff number -> name


def alert_body(env: dict[str, Any], staff_names: dict[str, str] | None = None) -> dict[str, Any]:
    """What the webhook gets: the fields a supervisor needs, a ready-made text, and the event."""
    d = env.get("data") if isinstance(env.get("data"), dict) else {}
    kind = str(d.get("kind") or "")
    device, ts = env.get("device"), env.get("ts") or ""
    body: dict[str, Any] = {
        "id": env.get("id"),
        "site": env.get("site"),
        "device": device,
        "kind": kind,
        "severity": d.get("severity"),
        "message": d.get("message"),
        "ts": ts,
    }
    if kind == "dissatisfied":
        for k in ("window", "staff", "score", "reason"):
            body[k] = d.get(k)
        name = (staff_names or {}).get(str(d.get("staff")))
        body["staff_name"] = name
        parts = [f"【不满意评价】窗口 {d.get('window') or '?'}"]
        if d.get("staff"):
            parts.append(f"工号 {d['staff']}" + (f" {name}" if name else ""))
        parts.append(f"评分 {d.get('score', '?')}")
        parts.append(f"原因: {d.get('reason') or '未选择'}")
        text = " ".join(parts)
    else:
        text = f"[{d.get('severity') or 'alert'}] {kind} {device}: {d.get('message') or ''}"
    body["text"] = f"{text} {str(ts)[11:16]} ({device})".strip()
    body["event"] = env
    return body


class Forwarder:
    def __init__(self, engine: Engine, opts: AlertOptions) -> None:
        self.engine = engine
        self.opts = opts
        self.stop_event = threading.Event()
        self.sent = 0
        self.pause = Backoff(first=opts.retry_min_s, cap=opts.retry_max_s)
        self._db = Backoff(first=0.5, cap=10.0)

    def run(self) -> None:
        log.info("alerts: forwarding from the site database to %s", self.opts.webhook or "stdout")
        while not self.stop_event.is_set():
            try:
                sent, wait = self._pass()
                self._db.reset()
            except OperationalError as e:
                wait = self._db.next()
                log.error(
                    "alerts: database unreachable (%s); trying again in %.1f s",
                    str(e).splitlines()[0],
                    wait,
                )
                sent = 0
            if not sent:
                self.stop_event.wait(wait)

    def _pass(self) -> tuple[int, float]:
        """Deliver what is due; returns (how many went out, how long to wait if none did)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    alert_deliveries.c.event_id,
                    alert_deliveries.c.device,
                    alert_deliveries.c.n,
                    alert_deliveries.c.attempts,
                    alert_deliveries.c.next_try,
                    alert_deliveries.c.stored_at,
                    events.c.payload,
                )
                .join(events, events.c.id == alert_deliveries.c.event_id)
                .where(alert_deliveries.c.delivered_at.is_(None))
                .order_by(alert_deliveries.c.device, alert_deliveries.c.n)
                .limit(FETCH)
            ).all()
        heads: dict[str, list[Any]] = {}
        for r in rows:
            heads.setdefault(r.device, []).append(r)
        sent = 0
        wait = self.opts.poll_s
        # Oldest device queue first; within a device strictly in order.
        for dev in sorted(heads, key=lambda d: heads[d][0].stored_at):
            for r in heads[dev]:
                if self.stop_event.is_set():
                    return sent, 0.0
                if r.next_try > time.time():
                    wait = min(wait, max(0.05, r.next_try - time.time()))
                    break  # this device waits; its later alerts wait behind it
                error, webhook_down = self._deliver(r.event_id, r.payload)
                if error is None:
                    self._mark(r.event_id, delivered=True)
                    self.pause.reset()
                    self.sent += 1
                    sent += 1
                    continue
                delay = Backoff(
                    first=self.opts.retry_min_s, cap=self.opts.retry_max_s, failures=r.attempts
                ).next()
                self._mark(
                    r.event_id, delivered=False, attempts=r.attempts + 1, delay=delay, error=error
                )
                log.warning(
                    "alerts: webhook failed for %s from %s (attempt %d): %s; retry in %.1f s",
                    r.event_id,
                    dev,
                    r.attempts + 1,
                    error,
                    delay,
                )
                if webhook_down:  # no point trying the other devices' alerts now
                    return sent, self.pause.next()
                break
        return sent, wait

    def _mark(
        self,
        eid: str,
        *,
        delivered: bool,
        attempts: int = 0,
        delay: float = 0.0,
        error: str = "",
    ) -> None:
        now = time.time()
        values: dict[str, Any] = (
            {"delivered_at": now, "last_error": None}
            if delivered
            else {"attempts": attempts, "next_try": now + delay, "last_error": error[:300]}
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(alert_deliveries)
                .where(
                    and_(
                        alert_deliveries.c.event_id == eid,
                        alert_deliveries.c.delivered_at.is_(None),
                    )
                )
                .values(**values)
            )

    def _deliver(self, eid: str, payload: str) -> tuple[str | None, bool]:
        """(None, _) on success, else (the error, whether the webhook itself seems down)."""
        try:
            body = alert_body(json.loads(payload), self.opts.staff_names)
        except ValueError:
            body = {"id": eid, "text": "alert (its stored payload is not JSON)"}
        data = json.dumps(body, ensure_ascii=False)
        if not self.opts.webhook:
            sys.stdout.write(data + "\n")
            sys.stdout.flush()
            return None, False
        req = urllib.request.Request(
            self.opts.webhook,
            data=data.encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": eid,
                "User-Agent": f"careterm-alerts/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                resp.read(65536)
                return None, False
        except urllib.error.HTTPError as e:
            # 4xx (but for "try later") is about this alert; anything else is the webhook's state.
            down = e.code >= 500 or e.code in (408, 429)
            return f"HTTP {e.code} {e.reason}", down
        except (urllib.error.URLError, OSError, ValueError) as e:
            return str(getattr(e, "reason", e)), True


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(alert_deliveries)
            .where(alert_deliveries.c.delivered_at.is_(None))
        ).scalar_one()


def run_alerts(engine: Engine, opts: AlertOptions) -> int:
    f = Forwarder(engine, opts)

    def _stop(signum: int, frame: Any) -> None:
        f.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    f.run()
    log.info("alerts: stopped; %d delivered, %d waiting", f.sent, pending_count(engine))
    return 0
