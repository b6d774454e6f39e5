"""`site alerts --db`: every stored alert reaches a webhook, in order per device, once per key,
however long the forwarder or the webhook was away."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from central.alerts import SET_ASIDE, AlertOptions, Forwarder, pending_count
from central.db import alert_deliveries, open_db
from tests.central.test_accounting import Books, env
from tests.central.test_collector_e2e import outbox_empty
from tests.conftest import careterm_cmd, careterm_env, run_careterm, wait_for

pytestmark = [pytest.mark.broker]


def strict_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Webhook:
    """A local HTTP endpoint. `answer(body) -> status` decides each reply (200 by default)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.answer = None
        self.lock = threading.Lock()
        self.calls: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw, parse_constant=strict_json)  # as a strict receiver
                with hook.lock:
                    code = 500 if len(hook.calls) < hook.fail else 200
                    if hook.answer is not None:
                        code = hook.answer(body)
                    hook.calls.append((code, body, dict(self.headers)))
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [b for code, b, _ in self.calls if code == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_factory() -> Iterator[Any]:
    made: list[Webhook] = []

    def make(fail: int = 0) -> Webhook:
        w = Webhook(fail)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


class AlertsProc:
    """`careterm site alerts --db ...` as a process."""

    def __init__(self, db: str, tmp_path: Path, *extra: str) -> None:
        n = len(list(tmp_path.glob("alerts-*.out")))
        self.out, self.err = tmp_path / f"alerts-{n}.out", tmp_path / f"alerts-{n}.err"
        with self.out.open("w") as o, self.err.open("w") as e:
            self.proc = subprocess.Popen(
                careterm_cmd(
                    "-v",
                    "site",
                    "alerts",
                    "--db",
                    db,
                    "--retry-min",
                    "0.2",
                    "--retry-max",
                    "1",
                    *extra,
                ),
                stdout=o,
                stderr=e,
                env=careterm_env(),
            )
        wait_for(lambda: "alerts: forwarding" in self.err.read_text(), 15, what="forwarder up")

    def stop(self) -> tuple[str, str]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)
        err = self.err.read_text()
        assert self.proc.returncode == 0, err
        return self.out.read_text(), err


@pytest.fixture
def alerts_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[AlertsProc] = []

    def make(db: str, *extra: str) -> AlertsProc:
        p = AlertsProc(db, tmp_path, *extra)
        made.append(p)
        return p

    yield make
    for p in made:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(5)


def pending(db: str) -> int:
    eng = open_db(db, create=False)
    with eng.connect() as c:
        n = len(
            c.execute(
                select(alert_deliveries.c.event_id).where(alert_deliveries.c.delivered_at.is_(None))
            ).all()
        )
    eng.dispose()
    return n


def test_dissatisfied_rating_reaches_a_failing_webhook_once_after_retries(
    broker, device_factory, collector_factory, alerts_factory, webhook_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    hook = webhook_factory(fail=2)
    staff = tmp_path / "staff.json"
    staff.write_text(json.dumps([{"staff": "E1024", "name": "王芳"}], ensure_ascii=False))
    p = alerts_factory(db, "--webhook", hook.url, "--staff", str(staff))
    up = device_factory("pad-w03", broker.url)
    wait_for(lambda: up.link.connected.is_set(), 10, what="device connected")
    ev = up.alert(
        "dissatisfied",
        "warning",
        "score 1 at W03",
        window="W03",
        staff="E1024",
        score=1,
        reason="等候时间长",
    )
    up.alert("printer", "critical", "paper out", printer="paper_out")
    wait_for(lambda: len(hook.delivered()) == 2, 20, what="two alerts delivered")
    _, err = p.stop()
    assert [c for c, _, _ in hook.calls] == [500, 500, 200, 200]
    first, second = hook.delivered()  # one device: in the order it raised them
    assert (first["id"], second["kind"]) == (ev.id, "printer")
    assert (first["window"], first["staff"], first["score"], first["reason"]) == (
        "W03",
        "E1024",
        1,
        "等候时间长",
    )
    assert first["staff_name"] == "王芳"
    assert first["text"].startswith(
        "【不满意评价】窗口 W03 工号 E1024 王芳 评分 1 原因: 等候时间长 "
    )
    assert first["event"]["seq"] == ev.seq
    assert [c[2]["Idempotency-Key"] for c in hook.calls] == [ev.id, ev.id, ev.id, second["id"]]
    assert "webhook failed" in err
    assert pending(db) == 0


def test_alerts_stored_while_the_forwarder_was_away_longer_than_any_session_all_arrive_in_order(
    broker, device_factory, collector_factory, alerts_factory, webhook_factory, tmp_path: Path
) -> None:
    """Issue 12: the forwarder used to rely on its broker session (120 s): down longer, and
    every alert raised meanwhile was gone. It now reads the database, which has them all."""
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", "--session-expiry", "1").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    hook = webhook_factory()
    p = alerts_factory(db, "--webhook", hook.url)
    pads = [device_factory(f"pad-w0{i}", broker.url) for i in (1, 2)]
    for up in pads:
        wait_for(lambda up=up: up.link.connected.is_set(), 10, what="device connected")
    raised: dict[str, list[str]] = {"pad-w01": [], "pad-w02": []}

    def raise_alerts(n: int) -> None:
        for _ in range(n):
            for up in pads:
                ev = up.alert("help", "warning", "call staff", location="大厅")
                raised[up.cfg.device.id].append(ev.id)

    raise_alerts(3)
    wait_for(lambda: len(hook.delivered()) == 6, 15, what="the first alerts")
    p.stop()
    raise_alerts(20)  # the forwarder is away ...
    for up in pads:
        wait_for(lambda up=up: outbox_empty(up), 20, what="alerts stored and acked at the site")
    time.sleep(2.5)  # ... longer than any broker session here (the collector's is 1 s)
    assert len(hook.delivered()) == 6
    p = alerts_factory(db, "--webhook", hook.url)
    wait_for(lambda: len(hook.delivered()) == 46, 30, what="every alert raised meanwhile")
    # killed mid-stream: nothing lost; a repeat carries the same key
    raise_alerts(10)
    wait_for(lambda: len(hook.delivered()) >= 50, 15, what="some of the next ones")
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait(5)
    p = alerts_factory(db, "--webhook", hook.url)
    wait_for(lambda: pending(db) == 0, 30, what="the rest")
    p.stop()
    got: dict[str, list[str]] = {"pad-w01": [], "pad-w02": []}
    for body in hook.delivered():
        ids = got[body["device"]]
        if body["id"] not in ids:  # at least once: a repeat may follow a kill
            ids.append(body["id"])
    assert got == raised  # every one, in the order each device raised them
    keys = [c[2]["Idempotency-Key"] for c in hook.calls]
    assert len(keys) - len(set(keys)) <= 1  # only the one in flight at the kill may repeat
    assert all(c[2]["Idempotency-Key"] == c[1]["id"] for c in hook.calls)


def test_an_alert_the_webhook_refuses_holds_back_only_its_own_device(
    broker, subscriber_factory, collector_factory, alerts_factory, webhook_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    hook = webhook_factory()
    refuse = {"on": True}
    hook.answer = lambda body: 400 if refuse["on"] and body["device"] == "pad-x" else 200
    pub = subscriber_factory(broker.port, ["careterm/main/+/ack"])

    def alert(dev: str, seq: int, kind: str) -> None:
        env = {
            "v": 1,
            "id": f"0193a1b2-0000-7000-8000-{dev[-1]}{seq:011d}",
            "seq": seq,
            "device": dev,
            "site": "main",
            "type": "alert",
            "ts": "2026-11-23T09:41:12+08:00",
            "clock_synced": True,
            "data": {"kind": kind, "severity": "warning", "message": kind},
        }
        pub.publish(f"careterm/main/{dev}/alerts/{kind}", env)

    alert("pad-x", 1, "printer")
    alert("pad-x", 2, "buttons")
    alert("pad-y", 1, "printer")
    p = alerts_factory(db, "--webhook", hook.url)
    wait_for(lambda: [b["device"] for b in hook.delivered()] == ["pad-y"], 15, what="pad-y")
    time.sleep(1.0)
    assert [b["device"] for b in hook.delivered()] == ["pad-y"]  # pad-x's second waits
    refuse["on"] = False
    wait_for(lambda: len(hook.delivered()) == 3, 15, what="pad-x after the fix")
    _, err = p.stop()
    assert [b["kind"] for b in hook.delivered() if b["device"] == "pad-x"] == ["printer", "buttons"]
    assert "HTTP 400" in err


def test_without_a_webhook_alerts_are_printed_one_json_line_each(
    broker, subscriber_factory, collector_factory, alerts_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    p = alerts_factory(db)
    pub = subscriber_factory(broker.port, ["careterm/main/pad-x/ack"])
    env = {
        "v": 1,
        "id": "a-1",
        "seq": None,
        "device": "pad-x",
        "site": "main",
        "type": "alert",
        "ts": "2026-11-23T09:41:12+08:00",
        "clock_synced": True,
        "data": {
            "kind": "storage",
            "severity": "critical",
            "message": "disk full",
            "durable": False,
        },
    }
    pub.publish("careterm/main/pad-x/alerts/storage", env)
    pub.publish("careterm/main/pad-x/alerts/storage", b"garbage")
    pub.publish("careterm/main/pad-x/alerts/storage", {**env, "id": "a-2"})
    wait_for(lambda: pending(db) == 0 and len(p.out.read_text().splitlines()) == 2, 15, what="2")
    out, _ = p.stop()
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["a-1", "a-2"]
    assert lines[0]["kind"] == "storage" and lines[0]["severity"] == "critical"


def alert_env(dev: str, seq: int | None, kind: str = "dissatisfied") -> dict[str, Any]:
    return env(dev, seq, "alert", {"kind": kind, "severity": "warning", "message": kind})


def test_alerts_two_collectors_commit_out_of_order_go_out_in_seq_order(
    engine, webhook_factory
) -> None:
    """Audit #1: collectors of one group commit a device's alerts in any order. An alert
    stored ahead of an earlier one still in flight at another collector waits for it; an
    alert without seq (non-durable storage alert) is in no order and goes at once."""
    col_a, col_b = Books(engine), Books(engine)  # two collectors, one database
    first, second, third, fourth = (alert_env("pad-a", q) for q in (1, 2, 3, 4))
    storage = alert_env("pad-a", None, "storage")
    hook = webhook_factory()
    fwd = Forwarder(engine, AlertOptions(webhook=hook.url))
    col_b.store(third)
    col_b.store(second, storage)
    fwd._pass()
    assert [b["id"] for b in hook.delivered()] == [storage["id"]]  # 2 and 3 wait for 1
    col_a.store(first)
    col_b.store(fourth)
    fwd._pass()
    seqs = [b["event"]["seq"] for b in hook.delivered()]
    assert seqs == [None, 1, 2, 3, 4]
    fwd._pass()
    assert len(hook.calls) == 5  # each once


@pytest.mark.parametrize("tool", [["alerts"], ["gaps"]])
def test_a_missing_sqlite_database_is_refused_not_created(tmp_path: Path, tool) -> None:
    """Audit #8: a mistyped --db path made an empty database and forwarded nothing, silently."""
    typo = tmp_path / "typo.db"
    r = run_careterm("site", *tool, "--db", f"sqlite:///{typo}")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"no SQLite database at {typo}" in r.stderr and "site collect" in r.stderr
    assert not typo.exists()


def test_an_alert_the_webhook_refuses_for_good_is_set_aside_and_the_next_ones_go_on(
    engine, webhook_factory, caplog
) -> None:
    """Audit #7: one alert the receiver can never take (413, 400) held back every later
    alert of its device forever. After `max_refusals` 4xx answers it is set aside: kept in
    the database, marked, logged at ERROR with its id; the next alert goes on."""
    books = Books(engine)
    bad, after = alert_env("pad-x", 1), alert_env("pad-x", 2)
    books.store(bad, after)
    hook = webhook_factory()
    hook.answer = lambda body: 413 if body["id"] == bad["id"] else 200
    opts = AlertOptions(webhook=hook.url, retry_min_s=0.0, retry_max_s=0.0, max_refusals=3)
    fwd = Forwarder(engine, opts)
    with caplog.at_level("ERROR", logger="careterm.alerts"):
        for _ in range(4):
            fwd._pass()
    assert [(code, body["id"]) for code, body, _ in hook.calls] == [
        (413, bad["id"]),
        (413, bad["id"]),
        (413, bad["id"]),
        (200, after["id"]),
    ]
    row = {r.event_id: r for r in books.rows(alert_deliveries)}[bad["id"]]
    assert (row.delivered_at, row.next_try, row.attempts) == (None, SET_ASIDE, 3)
    assert row.last_error.startswith("set aside: HTTP 413")
    assert f"refused alert {bad['id']} from pad-x 3 times" in caplog.text
    assert pending_count(engine) == 0 and fwd.set_aside == 1


def test_a_device_with_many_alerts_waiting_does_not_hide_the_other_devices(
    engine, webhook_factory
) -> None:
    """A pass read the first 500 pending alerts of the whole table, by device: one device
    with more than that waiting behind a gap (its seq 1 still in flight) held back every
    device after it until the gap was given up."""
    books = Books(engine)
    books.store(*[alert_env("pad-a", q) for q in range(2, 603)])  # seq 1 not stored yet
    later = alert_env("pad-b", 1)
    books.store(later)
    hook = webhook_factory()
    fwd = Forwarder(engine, AlertOptions(webhook=hook.url))
    fwd._pass()
    assert [b["id"] for b in hook.delivered()] == [later["id"]]
    books.store(alert_env("pad-a", 1))
    while fwd._pass()[0]:
        pass
    seqs = [b["event"]["seq"] for b in hook.delivered() if b["event"]["device"] == "pad-a"]
    assert seqs == list(range(1, 603)) and pending_count(engine) == 0


def test_the_webhook_gets_strict_json_even_from_an_alert_carrying_nan(
    engine, webhook_factory
) -> None:
    """Python's JSON reader takes NaN and Infinity from a device's payload; written back as
    they were, the webhook's body was not JSON a strict receiver parses."""
    books = Books(engine)
    odd = alert_env("pad-x", 1)
    odd["data"]["level"] = float("nan")
    odd["data"]["extra"] = [float("inf"), 1.5]
    books.store(odd)
    hook = webhook_factory()
    Forwarder(engine, AlertOptions(webhook=hook.url))._pass()
    assert len(hook.calls) == 1
    (_, body, _) = hook.calls[0]
    assert body["event"]["data"]["level"] is None and body["event"]["data"]["extra"] == [None, 1.5]
