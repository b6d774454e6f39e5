"""`site alerts`: device alerts reach a webhook once each, through outages and restarts."""

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

from tests.conftest import careterm_cmd, careterm_env, wait_for

pytestmark = [pytest.mark.broker]


class Webhook:
    """A local HTTP endpoint that answers 500 to the first `fail` POSTs, then 200."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code = 500 if len(hook.calls) < hook.fail else 200
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
    def __init__(self, broker, tmp_path: Path, *extra: str) -> None:
        n = len(list(tmp_path.glob("alerts-*.out")))
        self.out, self.err = tmp_path / f"alerts-{n}.out", tmp_path / f"alerts-{n}.err"
        with self.out.open("w") as o, self.err.open("w") as e:
            self.proc = subprocess.Popen(
                careterm_cmd(
                    "-v",
                    "site",
                    "alerts",
                    "--broker",
                    broker.url,
                    "--queue",
                    str(tmp_path / "alerts.sqlite"),
                    "--client-id",
                    "alerts-a",
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
        wait_for(lambda: "alerts: subscribed" in self.err.read_text(), 15, what="forwarder up")


def start_alerts(broker, tmp_path: Path, *extra: str) -> AlertsProc:
    return AlertsProc(broker, tmp_path, *extra)


def stop(p: AlertsProc) -> tuple[str, str]:
    p.proc.send_signal(signal.SIGTERM)
    p.proc.wait(15)
    err = p.err.read_text()
    assert p.proc.returncode == 0, err
    return p.out.read_text(), err


def test_dissatisfied_rating_reaches_a_failing_webhook_once_after_retries(
    broker, device_factory, webhook_factory, tmp_path: Path
) -> None:
    hook = webhook_factory(fail=2)
    staff = tmp_path / "staff.json"
    staff.write_text(json.dumps([{"staff": "E1024", "name": "王芳"}], ensure_ascii=False))
    p = start_alerts(broker, tmp_path, "--webhook", hook.url, "--staff", str(staff))
    try:
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
    finally:
        _, err = stop(p)
    assert [c for c, _, _ in hook.calls] == [500, 500, 200, 200]
    # each alert has its own backoff: a retried one may arrive after a newer one
    first = next(b for b in hook.delivered() if b["id"] == ev.id)
    assert first["kind"] == "dissatisfied"
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
    assert {c[2]["Idempotency-Key"] for c in hook.calls if c[0] == 200} == {
        b["id"] for b in hook.delivered()
    }
    assert sorted(b["kind"] for b in hook.delivered()) == ["dissatisfied", "printer"]
    assert "webhook failed" in err


def test_alerts_wait_in_the_queue_through_a_webhook_outage_and_a_restart(
    broker, subscriber_factory, tmp_path: Path
) -> None:
    dead = "http://127.0.0.1:1/hook"
    p = start_alerts(broker, tmp_path, "--webhook", dead)
    pub = subscriber_factory(broker.port, ["careterm/main/pad-x/ack"])
    env = {
        "v": 1,
        "id": "0193a1b2-0000-7000-8000-0000000000a1",
        "seq": 7,
        "device": "pad-x",
        "site": "main",
        "type": "alert",
        "ts": "2026-11-23T09:41:12+08:00",
        "clock_synced": True,
        "data": {"kind": "card_reader", "severity": "warning", "message": "reader unplugged"},
    }
    pub.publish("careterm/main/pad-x/alerts/card_reader", env)
    pub.publish("careterm/main/pad-x/alerts/card_reader", env)  # the same event again
    time.sleep(1.5)
    stop(p)
    hook_server = Webhook()
    try:
        p = start_alerts(broker, tmp_path, "--webhook", hook_server.url)
        wait_for(lambda: len(hook_server.delivered()) == 1, 15, what="queued alert delivered")
        time.sleep(0.5)
        stop(p)
        assert len(hook_server.calls) == 1
        assert hook_server.delivered()[0]["message"] == "reader unplugged"
    finally:
        hook_server.close()


def test_without_a_webhook_alerts_are_printed_one_json_line_each(
    broker, subscriber_factory, tmp_path: Path
) -> None:
    p = start_alerts(broker, tmp_path)
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
    time.sleep(2.0)
    out, err = stop(p)
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["a-1", "a-2"]
    assert lines[0]["kind"] == "storage" and lines[0]["severity"] == "critical"
    assert "ignored a message" in err
