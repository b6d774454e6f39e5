"""Rows derived from new events for reports and the site console: ratings with their
reasons, prompts, the alert forwarder's queue, and the latest telemetry of each device.

Run inside the batch's transaction, under the lock of the events' device rows, which is what
makes a reason meet its rating whichever arrives first, and numbers alerts in one order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, select, tuple_, update
from sqlalchemy.engine import Connection

from central.db import (
    alert_deliveries,
    bulk_insert,
    prompts,
    ratings,
    reasons,
    telemetry,
    upsert,
)
from central.messages import Event, Telemetry, clean, envelope_text, rating_of
from terminal import payloads

PAD_TYPES = ("rating", "reason", "prompt")
"""Events only a rating pad makes (SPEC 4.1, 9.3)."""


def pad_events_of_kiosks(new: list[Event], dev_rows: dict) -> list[Event]:
    """Ratings, reasons and prompts of a device whose own status says it is a kiosk: a
    misconfigured device, or one speaking for windows it does not serve. Stored, counted in
    no report."""
    return [
        ev
        for ev in new
        if ev.type in PAD_TYPES
        and ev.model is not None
        and dev_rows.get(ev.device, {}).get("role") == "kiosk"
    ]


def insert_details(conn: Connection, new: list[Event], dev_rows: dict) -> None:
    rating_rows, reason_rows, prompt_rows = [], [], []
    answers: dict[tuple[str, str], str | None] = {}
    for ev in new:
        m = ev.model
        if isinstance(m, payloads.ReasonData):
            row = {
                "event_id": ev.id,
                "rating": m.rating,
                "device": ev.device,
                "site": ev.site,
                "window": clean(m.window),
                "staff": clean(m.staff) if m.staff else None,
                "reason": clean(m.reason) if m.reason else None,
                "ts": ev.ts,
                "day": ev.day,
                "hour": ev.hour,
            }
            reason_rows.append(row)
            answers[(ev.device, m.rating)] = row["reason"]
        elif isinstance(m, payloads.PromptData):
            prompt_rows.append(
                {
                    "event_id": ev.id,
                    "prompt": clean(m.prompt),
                    "ticket": clean(m.ticket) if m.ticket else None,
                    "device": ev.device,
                    "site": ev.site,
                    "window": clean(m.window),
                    "staff": clean(m.staff) if m.staff else None,
                    "outcome": m.outcome,
                    "ts": ev.ts,
                    "day": ev.day,
                    "hour": ev.hour,
                }
            )
    asked = [ev for ev in new if isinstance(ev.model, payloads.RatingData)]
    earlier = [
        (ev.device, ev.id)
        for ev in asked
        if ev.model.reason_asked and (ev.device, ev.id) not in answers  # type: ignore[union-attr]
    ]
    if earlier:  # reasons stored before their rating (another collector, a resend)
        for r in conn.execute(
            select(reasons.c.device, reasons.c.rating, reasons.c.reason).where(
                tuple_(reasons.c.device, reasons.c.rating).in_(earlier)
            )
        ):
            answers[(r.device, r.rating)] = r.reason
    for ev in asked:
        r = rating_of(ev)
        assert r is not None
        reason = answers.get((ev.device, ev.id), r.reason)
        rating_rows.append(
            {
                "event_id": ev.id,
                "device": ev.device,
                "site": ev.site,
                "window": r.window,
                "staff": r.staff,
                "score": r.score,
                "scale": r.scale,
                "label": r.label,
                "reason": reason,
                "reason_asked": r.reason_asked,
                "prompt": r.prompt,
                "ticket": r.ticket,
                "misuse": r.misuse,
                "response_ms": r.response_ms,
                "ts": ev.ts,
                "day": ev.day,
                "hour": ev.hour,
            }
        )
    if rating_rows:
        _bulk(conn, ratings, rating_rows)
    if prompt_rows:
        _bulk(conn, prompts, prompt_rows)
    if reason_rows:
        _bulk(conn, reasons, reason_rows)
        in_batch = {row["event_id"] for row in rating_rows}
        later = [row for row in reason_rows if row["rating"] not in in_batch]
        if later:  # the rating came first: give it its reason (only the same device's)
            conn.execute(
                update(ratings)
                .where(
                    and_(
                        ratings.c.event_id == bindparam("k_rating"),
                        ratings.c.device == bindparam("k_device"),
                    )
                )
                .values(reason=bindparam("v_reason")),
                [
                    {"k_rating": r["rating"], "k_device": r["device"], "v_reason": r["reason"]}
                    for r in sorted(later, key=lambda r: (r["device"], r["rating"]))
                ],
            )


def queue_alerts(conn: Connection, new: list[Event], dev_rows: dict, now: float) -> None:
    """Each new alert gets its place in the forwarder's queue, in storing order per
    device (the device row's lock makes that order the same for every collector)."""
    alerts = sorted(
        (ev for ev in new if ev.type == "alert"),
        key=lambda e: (e.device, e.epoch or "", e.seq or 0, e.id),
    )
    if not alerts:
        return
    rows = []
    for ev in alerts:
        d = dev_rows[ev.device]
        d["alerts_stored"] += 1
        rows.append(
            {
                "event_id": ev.id,
                "device": ev.device,
                "n": d["alerts_stored"],
                "stored_at": now,
                "attempts": 0,
                "next_try": 0.0,
            }
        )
    _bulk(conn, alert_deliveries, rows)


def store_telemetry(conn: Connection, items: list[Telemetry], now: float) -> None:
    latest: dict[str, Telemetry] = {}
    for tm in items:
        latest[tm.device] = tm
    if not latest:
        return
    cols = [
        "site",
        "received_at",
        "ts",
        "uptime_s",
        "outbox_depth",
        "oldest_pending_s",
        "printer",
        "card_reader",
        "buttons",
        "clock_synced",
        "cert_days_left",
        "payload",
    ]
    rows = []
    for dev in sorted(latest):
        b = latest[dev].body
        rows.append(
            {
                "device": dev,
                "site": latest[dev].site,
                "received_at": now,
                "ts": clean(b.ts),
                "uptime_s": b.uptime_s,
                "outbox_depth": b.outbox_depth,
                "oldest_pending_s": b.oldest_pending_s,
                "printer": b.printer,
                "card_reader": b.card_reader,
                "buttons": b.buttons,
                "clock_synced": b.clock_synced,
                "cert_days_left": b.cert_days_left,
                "payload": envelope_text(latest[dev].raw),
            }
        )
    conn.execute(upsert(conn, telemetry, ["device"], cols), rows)


def _bulk(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Rows of new events only (their ids were just inserted): no conflict is possible."""
    if rows:
        cols = list(rows[0])
        bulk_insert(conn, table, cols, [tuple(r[c] for c in cols) for r in rows])
