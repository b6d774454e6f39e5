"""A prompted pad process, the queue system's `cmd/prompt` over MQTT, the collector and the
report: a prompt answered by a key press is one prompt, rated (SPEC 9.3's 评价率)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from terminal.topics import Topics
from tests.central.test_collector_e2e import db_count
from tests.central.test_pad_to_report import pad_at_the_site, report_row
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_prompt_answered_on_a_real_pad_counts_in_the_response_rate(
    config_writer, broker, pty, collector_factory, tmp_path: Path
) -> None:
    prompted = 'mode = "prompted"\nprompt_window_s = 30'
    queue = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    replies: list[dict] = []
    topics = Topics("careterm", "main", "pad-w03")
    queue.on_message = lambda c, u, m: replies.append(json.loads(m.payload))
    queue.connect("127.0.0.1", broker.port)
    queue.subscribe(topics.reply, qos=1)
    queue.loop_start()
    try:
        with pad_at_the_site(
            config_writer, broker, pty, collector_factory, tmp_path, prompted
        ) as db:
            queue.publish(
                topics.command("prompt"), json.dumps({"cid": "q-1", "ticket": "A012"}), qos=1
            )
            wait_for(lambda: any(r.get("cid") == "q-1" for r in replies), 10, what="prompt reply")
            time.sleep(1.0)  # a patient, not the clerk's own finger (min_response_ms)
            pty.write(b"4")
            wait_for(lambda: db_count(db) >= 1, 20, what="the rating stored")
    finally:
        queue.loop_stop()
        queue.disconnect()
    row = report_row(db)
    assert (row["window"], row["rated"], row["score_4"], row["misuse"]) == ("W03", "1", "1", "0")
    assert (row["prompted"], row["prompts"], row["response_pct"]) == ("1", "1", "100.0")
    assert row["median_response_ms"] and int(row["median_response_ms"]) >= 900
