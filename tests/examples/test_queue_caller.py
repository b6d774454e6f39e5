"""examples/queue_caller.py against a real mosquitto and a real `careterm pad --headless`.

The pad runs in prompted mode with its keypad on a pty; the example prompts it with a ticket,
the test presses a key once the prompt is open, and the example prints the rating. Every
payload seen on the way is validated against the published JSON Schemas.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Broker, careterm_cmd, careterm_env, wait_for
from tests.rating_pad.conftest import BASE, STAFF, send_command, wait_subscribed

jsonschema = pytest.importorskip("jsonschema")
pytestmark = [pytest.mark.broker, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "queue_caller.py"
SCHEMAS = ROOT / "docs" / "reference" / "schemas"

PAD_COPIES_TICKET = False
"""SPEC 9.3: a rating carries the `ticket` its prompt had. The pad session implements it on
branch `pad`; main's pad does not copy it yet, so until it does this test asserts what main
does (no `ticket` in the rating). Set True once main's pad copies it."""


def _schema(rel: str) -> Any:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / rel).read_text(encoding="utf-8")))


def _valid(rel: str, payload: dict[str, Any]) -> None:
    errors = [e.message for e in _schema(rel).iter_errors(payload)]
    assert not errors, f"{rel}: {errors} in {payload}"


@pytest.fixture
def prompted_pad(broker: Broker, pty, config_writer, subscriber_factory, processes, tmp_path):
    cfg = config_writer(
        broker_url=broker.url,
        extra=f'[rating]\nmode = "prompted"\nprompt_window_s = 30\n'
        f'[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n',
    )
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    sub.publish("careterm/main/staff", STAFF, retain=True)
    log = tmp_path / "pad.log"
    processes.start(careterm_cmd("pad", "--headless", "--config", str(cfg)), log=log)
    wait_subscribed(sub)
    wait_for(lambda: log.exists() and "buttons: ok" in log.read_text(), 10, what="keypad open")
    # The staff directory arrives retained right after the connect; sign in once it is there.
    wait_for(
        lambda: send_command(sub, "staff", {"action": "sign_in", "staff": "E1024"})["ok"],
        10,
        every=0.2,
        what="the clerk signed in",
    )
    return sub


def _run_example(broker: Broker, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE),
            "--broker",
            broker.url,
            "--site",
            "main",
            "--device",
            "pad-w03",
            "--timeout",
            "20",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=careterm_env(),
    )


def test_queue_caller_prompts_the_pad_and_reads_the_rating_back(broker, prompted_pad, pty):
    sub = prompted_pad
    example = _run_example(broker, "--ticket", "A012")
    try:
        reply = wait_for(
            lambda: next(
                (r for r in sub.payloads("/reply") if str(r.get("cid")).startswith("queue-")),
                None,
            ),
            15,
            what="the pad's reply to the example's prompt",
        )
        assert reply["ok"], reply
        pty.write(b"4")
        out, err = example.communicate(timeout=30)
    finally:
        if example.poll() is None:
            example.kill()
    assert example.returncode == 0, err
    result = json.loads(out)
    assert result["prompt"] == reply["result"]["prompt"]
    assert (result["score"], result["scale"], result["label"]) == (4, 4, "非常满意")
    assert result["staff"] == "E1024" and result["window"] == "W03"
    assert result["misuse"] is False and result["response_ms"] >= 0

    (rating,) = sub.events("rating")
    assert rating["id"] == result["event"]
    if PAD_COPIES_TICKET:
        assert rating["data"]["ticket"] == "A012" and result["ticket"] == "A012"
    else:
        assert "ticket" not in rating["data"] and result["ticket"] is None

    # What the pad published is what the reference's schemas describe.
    _valid("events/rating.schema.json", rating)
    _valid("reply.schema.json", reply)
    for ev in sub.events("staff"):
        _valid("events/staff.schema.json", ev)
    for status in sub.payloads("/status"):
        _valid("status.schema.json", status)
    prompt_cmd = {"cid": reply["cid"], "ticket": "A012"}
    _valid("commands/prompt.schema.json", prompt_cmd)


def test_queue_caller_reports_a_refused_prompt(broker, prompted_pad):
    send_command(prompted_pad, "pause", {})
    example = _run_example(broker, "--ticket", "A013")
    out, err = example.communicate(timeout=30)
    assert example.returncode == 1, (out, err)
    assert "prompt refused" in json.loads(out)["error"]


def test_queue_caller_refuses_a_bad_broker_url(tmp_path: Path):
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--broker", "http://x", "--site", "main", "--device", "p"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "mqtt://" in r.stderr
