"""A prompted pad process, the queue system's `cmd/prompt` over MQTT, the collector and the
report: a prompt answered by a key press is one prompt, rated (SPEC 9.3's 评价率)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from terminal.topics import Topics
from tests.central.test_collector_e2e import db_count
from tests.central.test_pad_to_report import _online
from tests.conftest import careterm_cmd, careterm_env, run_careterm, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_prompt_answered_on_a_real_pad_counts_in_the_response_rate(
    config_writer, broker, pty, collector_factory, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/site.db"
    col = collector_factory(broker.url, db, "--client-id", "col-a", "--gap-timeout", "1").start()
    wait_for(lambda: "subscribed" in col.output(), 15, what="collector subscribed")
    cfg = config_writer(
        broker_url=broker.url,
        extra=f"""
[rating]
mode = "prompted"
prompt_window_s = 30
debounce_ms = 40

[buttons]
driver = "serial"
device = "{pty.path}"
baudrate = 9600
""",
    )
    with open(tmp_path / "pad.log", "ab") as log:
        pad = subprocess.Popen(
            careterm_cmd("pad", "--config", str(cfg), "--headless"),
            env=careterm_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    queue = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    replies: list[dict] = []
    topics = Topics("careterm", "main", "pad-w03")
    queue.on_message = lambda c, u, m: replies.append(json.loads(m.payload))
    queue.connect("127.0.0.1", broker.port)
    queue.subscribe(topics.reply, qos=1)
    queue.loop_start()
    try:
        wait_for(lambda: _online(db), 20, what="pad online at the site")
        queue.publish(topics.command("prompt"), json.dumps({"cid": "q-1", "ticket": "A012"}), qos=1)
        wait_for(lambda: any(r.get("cid") == "q-1" for r in replies), 10, what="prompt reply")
        time.sleep(1.0)  # a patient, not the clerk's own finger (min_response_ms)
        pty.write(b"4")
        wait_for(lambda: db_count(db) >= 1, 20, what="the rating stored")
    finally:
        queue.loop_stop()
        queue.disconnect()
        pad.terminate()
        pad.wait(10)
    r = run_careterm("site", "report", "--db", db, "--format", "csv")
    assert r.returncode == 0, r.stderr
    (row,) = csv.DictReader(io.StringIO(r.stdout))
    assert (row["window"], row["rated"], row["score_4"], row["misuse"]) == ("W03", "1", "1", "0")
    assert (row["prompted"], row["prompts"], row["response_pct"]) == ("1", "1", "100.0")
    assert row["median_response_ms"] and int(row["median_response_ms"]) >= 900
