"""`site alerts`: every alert stored in the site database -> a webhook (SMS gateway, chat bot).

The collector gives each new alert a row in `alert_deliveries` in the same transaction that
stores it. This forwarder keeps its position there: it POSTs the undelivered alerts of each
device in the order the device raised them (`seq` within an epoch), each only once every
earlier `seq` of its epoch is stored (several collectors commit a device's events in any
order), and marks each one delivered only after a 2xx. So an alert goes out at least once
(the `Idempotency-Key` header, the event id, lets the receiver drop a repeat), however long
the forwarder or the webhook was down. The database is the site's one durable queue: nothing
of it lives in a broker session.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from central.db import alert_deliveries, devices, events, streams
from terminal import __version__
from terminal.backoff import Backoff

log = logging.getLogger("careterm.alerts")

HTTP_TIMEOUT_S = 10.0
PER_DEVICE = 200
"""Alerts of one device a pass looks at: its queue's head (a pass stops a device at its
first alert that must wait)."""
SET_ASIDE = -1.0
"""`alert_deliveries.next_try` of an alert set aside: the webhook refused it for good."""


@dataclass
class AlertOptions:
    webhook: str = ""
    retry_min_s: float = 1.0
    retry_max_s: float = 300.0
    poll_s: float = 0.2
    max_refusals: int = 8  # 4xx answers (but 408/429) before an alert is set aside
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
        self.refusals: dict[str, int] = {}  # event id -> 4xx answers in a row, this run
        self.set_aside = 0

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
            rows = conn.execute(_pending_query()).all()
        heads: dict[str, list[Any]] = {}
        for r in rows:
            heads.setdefault(r.device, []).append(r)
        sent = 0
        wait = self.opts.poll_s
        # Oldest device queue first; within a device strictly in order.
        for dev in sorted(heads, key=lambda d: min(r.stored_at for r in heads[d])):
            stopped: set[bool] = set()  # lanes (seq is None) held back for this pass
            for r in heads[dev]:
                lane = r.seq is None
                if lane in stopped:
                    continue
                if self.stop_event.is_set():
                    return sent, 0.0
                if not _released(r):
                    stopped.add(lane)  # an earlier alert is still on its way to the site
                    continue
                if r.next_try > time.time():
                    wait = min(wait, max(0.05, r.next_try - time.time()))
                    stopped.add(lane)  # this device waits; its later alerts wait behind it
                    continue
                error, webhook_down = self._deliver(r.event_id, r.payload)
                if error is None:
                    self._mark(r.event_id, delivered=True)
                    self.pause.reset()
                    self.sent += 1
                    sent += 1
                    continue
                if webhook_down:  # no point trying the other devices' alerts now
                    self._failed(r, error)
                    return sent, self.pause.next()
                if self._refused(r, error):
                    continue  # set aside: the device's next alert goes on
                stopped.add(lane)
        return sent, wait

    def _refused(self, r: Any, error: str) -> bool:
        """The webhook refused this alert itself (a 4xx but 408/429): retried like any
        failure, but after `max_refusals` in a row it is set aside (kept, marked, logged
        with its id), so one alert the receiver can never take does not hold back every
        later alert of its device. Returns whether it was set aside."""
        n = self.refusals.get(r.event_id, 0) + 1
        if n < self.opts.max_refusals:
            self.refusals[r.event_id] = n
            self._failed(r, error)
            return False
        self.refusals.pop(r.event_id, None)
        with self.engine.begin() as conn:
            conn.execute(
                update(alert_deliveries)
                .where(
                    and_(
                        alert_deliveries.c.event_id == r.event_id,
                        alert_deliveries.c.delivered_at.is_(None),
                    )
                )
                .values(
                    attempts=r.attempts + 1,
                    next_try=SET_ASIDE,
                    last_error=f"set aside: {error}"[:300],
                )
            )
        self.set_aside += 1
        log.error(
            "alerts: the webhook refused alert %s from %s %d times (%s): set aside, the "
            "device's later alerts go on. It stays in alert_deliveries (next_try = -1); fix "
            "the receiver, then send it again: UPDATE alert_deliveries SET next_try = 0, "
            "attempts = 0 WHERE event_id = '%s'",
            r.event_id,
            r.device,
            n,
            error,
            r.event_id,
        )
        return True

    def _failed(self, r: Any, error: str) -> None:
        """Record a failed POST; the alert is tried again after a back-off."""
        delay = Backoff(
            first=self.opts.retry_min_s, cap=self.opts.retry_max_s, failures=r.attempts
        ).next()
        self._mark(r.event_id, delivered=False, attempts=r.attempts + 1, delay=delay, error=error)
        log.warning(
            "alerts: webhook failed for %s from %s (attempt %d): %s; retry in %.1f s",
            r.event_id,
            r.device,
            r.attempts + 1,
            error,
            delay,
        )

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
        data = json.dumps(_finite(body), ensure_ascii=False, allow_nan=False)
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


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity (which Python's JSON reader takes from a device's
    payload) as null: the webhook gets strict JSON, which has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _pending_query() -> Any:
    """The head of each device's undelivered alerts (at most PER_DEVICE), in the order it
    raised them: per epoch in `seq` order (older epochs first, the device's current one
    last), with the stream's contiguous watermark (`streams.acked_seq`) that says whether
    every earlier alert is stored. Alerts without `seq` (the non-durable storage alert) come
    first, in storing order.

    Cut per device (a window in SQL), not for the whole table: a device with hundreds of
    alerts waiting behind a gap must not hide every other device's alerts from the pass."""
    on_stream = and_(streams.c.device == events.c.device, streams.c.epoch == events.c.epoch)
    in_order = (
        case((events.c.seq.is_(None), 0), else_=1),
        case((devices.c.epoch == events.c.epoch, 1), else_=0),
        streams.c.first_seen,
        events.c.epoch,
        events.c.seq,
        alert_deliveries.c.n,
    )
    ranked = (
        select(
            alert_deliveries.c.event_id,
            alert_deliveries.c.device,
            alert_deliveries.c.n,
            alert_deliveries.c.attempts,
            alert_deliveries.c.next_try,
            alert_deliveries.c.stored_at,
            events.c.epoch,
            events.c.seq,
            events.c.payload,
            streams.c.acked_seq,
            func.row_number()
            .over(partition_by=alert_deliveries.c.device, order_by=in_order)
            .label("place"),
        )
        .select_from(
            alert_deliveries.join(events, events.c.id == alert_deliveries.c.event_id)
            .outerjoin(streams, on_stream)
            .outerjoin(devices, devices.c.device == alert_deliveries.c.device)
        )
        .where(
            and_(
                alert_deliveries.c.delivered_at.is_(None),
                alert_deliveries.c.next_try != SET_ASIDE,
            )
        )
        .subquery()
    )
    return (
        select(ranked).where(ranked.c.place <= PER_DEVICE).order_by(ranked.c.device, ranked.c.place)
    )


def _released(r: Any) -> bool:
    """Whether an alert may go now: every earlier seq of its epoch is stored (or accounted
    lost). With several collectors a device's alerts commit in any order; one stored ahead of
    an earlier alert still in flight at another collector waits for it, so it never
    overtakes it. An alert without `seq` is not in the device's order: it goes as it comes."""
    return r.seq is None or (r.acked_seq is not None and r.seq <= r.acked_seq)


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(alert_deliveries)
            .where(
                and_(
                    alert_deliveries.c.delivered_at.is_(None),
                    alert_deliveries.c.next_try != SET_ASIDE,
                )
            )
        ).scalar_one()


def run_alerts(engine: Engine, opts: AlertOptions) -> int:
    f = Forwarder(engine, opts)

    def _stop(signum: int, frame: Any) -> None:
        f.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    f.run()
    log.info(
        "alerts: stopped; %d delivered, %d set aside, %d waiting",
        f.sent,
        f.set_aside,
        pending_count(engine),
    )
    return 0
