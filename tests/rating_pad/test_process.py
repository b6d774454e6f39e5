"""SPEC 9.3 on a real `careterm pad --headless` process: keys on a pty, commands over MQTT,
kill -9 in the middle, every event checked against terminal/payloads.py."""

from __future__ import annotations

import re
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from terminal.payloads import EVENT_DATA, Envelope
from tests.conftest import careterm_cmd, wait_for
from tests.rating_pad.conftest import BASE, STAFF, send_command, wait_subscribed

pytestmark = [pytest.mark.broker, pytest.mark.slow]


class PadProcess:
    """`careterm pad --headless` with a pty keypad; started again on the same data dir."""

    def __init__(self, processes: Any, path: Path, sub: Any, pty: Any, env: dict[str, str]) -> None:
        self.processes, self.path, self.sub, self.pty = processes, path, sub, pty
        self.env = env
        self.proc: Any = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = self.path.with_suffix(f".{self.runs}.log")
        self.proc = self.processes.start(
            careterm_cmd("pad", "--headless", "--config", str(self.path)), log=log, **self.env
        )
        wait_subscribed(self.sub)
        # the keypad port opens within a second of start; pyserial flushes it on open
        wait_for(lambda: ": ok" in log.read_text(), 5, what="keypad open")
        time.sleep(0.3)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)
        log = self.path.with_suffix(f".{self.runs}.log").read_text()
        assert self.proc.returncode == 0, log[-3000:]
        return log

    def cmd(self, name: str, **body: Any) -> dict[str, Any]:
        return send_command(self.sub, name, body)

    def key(self, data: bytes) -> None:
        self.pty.write(data)


@pytest.fixture
def pad_process(broker, pty, config_writer, subscriber_factory, processes):
    def make(rating: str = "", **env: str) -> PadProcess:
        if "voice" not in rating:
            rating = f"voice = false\n{rating}"  # no sound card here: no player processes
        path = config_writer(
            broker_url=broker.url,
            extra=f"""
[buttons]
driver = "serial"
device = "{pty.path}"
[rating]
{rating}
""",
        )
        sub = subscriber_factory(broker.port, [f"{BASE}/#"])
        sub.publish("careterm/main/staff", STAFF, retain=True)
        pad = PadProcess(processes, path, sub, pty, env)
        pad.start()
        assert pad.cmd("staff", action="sign_in", staff="E1024")["ok"]
        return pad

    return make


def check_contract(events: list[dict[str, Any]]) -> None:
    """Every event is an Envelope whose data is exactly its model; seq has no gap."""
    by_seq = {}
    for e in events:
        Envelope.model_validate(e)
        EVENT_DATA[e["type"]].model_validate(e["data"])
        by_seq[e["seq"]] = e
    seqs = sorted(by_seq)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seq gap: {seqs}"


def test_the_issue_sequence_gives_each_rating_the_id_its_reply_returned(pad_process) -> None:
    """Prompt T2, score 1, prompt T3 during the reason (deferred), reason 2, prompt T4 during
    the thank-you, score 4: each rating carries its own reply's id, T3 is recorded as
    superseded, and no phantom prompt opens afterwards."""
    # A device process never writes a core file (its memory holds patients), whatever the
    # limit it was started with: started here with core files allowed.
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        pad = pad_process("min_response_ms = 300\nthanks_s = 3\nprompt_window_s = 4")
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    sub = pad.sub
    limits = Path(f"/proc/{pad.proc.pid}/limits").read_text()
    assert re.search(r"^Max core file size\s+0\s+0\s", limits, re.M), limits
    t2 = pad.cmd("prompt", ticket="T2")["result"]
    time.sleep(0.5)
    pad.key(b"1")
    wait_for(lambda: sub.events("alert"), 5, what="alert at the press")
    t3 = pad.cmd("prompt", ticket="T3")["result"]
    assert t3["deferred"] is True and t3["state"] == "reason"
    time.sleep(0.7)  # past the double-press grace of the reason screen
    pad.key(b"2")  # reason 2
    wait_for(lambda: sub.events("reason"), 5, what="reason")
    t4 = pad.cmd("prompt", ticket="T4")["result"]
    assert t4["state"] == "prompted" and t4["prompt"] not in (t2["prompt"], t3["prompt"])
    time.sleep(0.5)
    pad.key(b"4")
    ratings = wait_for(lambda: len(sub.events("rating")) >= 2 and sub.events("rating"), 5)
    time.sleep(3 + 4 + 1)  # thank-you, then a whole prompt window: nothing else may open
    log = pad.stop()
    assert [(r["data"]["prompt"], r["data"]["ticket"], r["data"]["misuse"]) for r in ratings] == [
        (t2["prompt"], "T2", False),
        (t4["prompt"], "T4", False),
    ]
    (closed,) = sub.events("prompt")
    assert closed["data"]["prompt"] == t3["prompt"] and closed["data"]["outcome"] == "superseded"
    assert closed["data"]["ticket"] == "T3"
    (reason,) = sub.events("reason")
    assert reason["data"]["rating"] == ratings[0]["id"] and reason["data"]["reason"] == "服务态度差"
    assert len(sub.events("rating")) == 2 and "Traceback" not in log
    check_contract(sub.events())


def test_kill_9_during_the_reason_screen_loses_nothing(pad_process) -> None:
    pad = pad_process("min_response_ms = 300\nreason_timeout_s = 60")
    sub = pad.sub
    r = pad.cmd("prompt", cid="queue-17", ticket="B023")
    assert r["ok"]
    time.sleep(0.5)
    pad.key(b"1")
    # the rating and the alert are out while the patient is still on the reason screen (the
    # reason question lasts 60 s here): stored and sent at the press
    rating = wait_for(lambda: sub.events("rating"), 5, what="rating at the press")[0]
    alert = wait_for(lambda: sub.events("alert"), 5, what="alert at the press")[0]
    assert rating["data"]["reason_asked"] is True and rating["data"]["reason"] is None
    assert rating["data"]["ticket"] == "B023" and rating["data"]["prompt"] == r["result"]["prompt"]
    assert alert["data"]["kind"] == "dissatisfied" and alert["data"]["rating"] == rating["id"]
    assert alert["seq"] == rating["seq"] + 1
    time.sleep(1.0)
    pad.kill9()  # two seconds into the reason screen
    pad.start()
    reason = wait_for(lambda: sub.events("reason"), 10, what="reason after the restart")[0]
    assert reason["data"] == {
        "rating": rating["id"],
        "window": "W03",
        "staff": "E1024",
        "reason": None,
    }
    # QoS 1 redelivers the prompt command after the restart: the first reply, nothing opens
    again = pad.cmd("prompt", cid="queue-17", ticket="B023")
    assert again == r
    pad.key(b"4")  # no prompt open: kept as misuse, not counted
    misuse = wait_for(lambda: len(sub.events("rating")) >= 2 and sub.events("rating")[1], 5)
    assert misuse["data"]["misuse"] is True and misuse["data"]["prompt"] is None
    pad.stop()
    evs = sub.events()
    assert [e["type"] for e in evs if e["type"] != "staff"] == [
        "rating",
        "alert",
        "reason",
        "rating",
    ]
    check_contract(evs)


def test_the_clerks_p_then_4_is_misuse_and_an_unanswered_prompt_is_recorded(
    pad_process, tmp_path
) -> None:
    played = tmp_path / "played.txt"
    player = tmp_path / "player.py"  # a stand-in for aplay: records what it was asked to play
    player.write_text(
        "import sys\nopen(sys.argv[1], 'a').write(sys.argv[2].rsplit('/', 1)[1] + '\\n')\n"
    )
    pad = pad_process(
        "prompt_window_s = 2\nvoice = true\nvoice_volume = 60",
        CARETERM_AUDIO_PLAYER=f"{sys.executable} {player} {played}",
    )
    sub = pad.sub
    pad.key(b"P")
    time.sleep(0.2)
    pad.key(b"4")  # within 250 ms of the clerk's prompt key
    fast = wait_for(lambda: sub.events("rating"), 5, what="misuse rating")[0]["data"]
    assert fast["misuse"] is True and fast["prompt"] and fast["response_ms"] < 700
    expired = wait_for(lambda: sub.events("prompt"), 6, what="expired prompt")[0]["data"]
    assert expired["prompt"] == fast["prompt"] and expired["outcome"] == "expired"
    # the shipped voice (scaled to 60 % by the speaker driver) played when the prompt opened
    assert played.read_text().split()[:1] == ["prompt.zh.wav"]
    log = pad.stop()
    assert "Traceback" not in log
    check_contract(sub.events())
