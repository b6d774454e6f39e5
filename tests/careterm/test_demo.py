"""`careterm demo` tells the truth about where it runs, and what it offers works there."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from careterm import demo
from careterm.demo_data import DEMO_PATIENTS
from terminal import resident_id
from tests.conftest import ROOT, Subscriber, careterm_cmd, careterm_env, run_careterm

HAS_MOSQUITTO = bool(shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto"))
needs_broker = pytest.mark.skipif(not HAS_MOSQUITTO, reason="mosquitto not installed")

REAL = demo.Screen("real", "display :0")
VIRTUAL = demo.Screen("virtual", "the display :99 is a virtual screen (Xvfb)")
NONE = demo.Screen("none", "no display: DISPLAY and WAYLAND_DISPLAY are not set")


def names_kiosk(text: str) -> bool:
    """Whether the demo's output speaks of the kiosk (the checkout's own path may hold the word)."""
    for path in (sys.executable, str(ROOT)):
        text = text.replace(path, "")
    return re.search(r"kiosk", text) is not None


def test_demo_patients_carry_valid_id_numbers() -> None:
    for number, _name, kind, _dep, _minutes in DEMO_PATIENTS:
        if kind == "id_card":
            assert resident_id.is_valid(number)


# -- what it prints, per mode ------------------------------------------------------------------


def _summary(screen: demo.Screen, *, headless=False, only=None, tty=True, broker=True) -> str:
    args = argparse.Namespace(headless=headless, only=only)
    plan = demo.plan_demo(args, screen, stdin_tty=tty)
    return demo.summary(plan, Path("/d"), "mqtt://127.0.0.1:4321", 4321, broker)


def test_on_a_real_screen_both_terminals_open_windows() -> None:
    text = _summary(REAL)
    assert "kiosk:    kiosk-01 in its own window" in text
    assert "pad-w03 at window W03, in its own window, prompted mode" in text
    assert "keys:     in the pad's window: P opens a prompt, then 1-4 rate" in text
    assert "mosquitto_pub -p 4321 -q 1 -t careterm/demo/pad-w03/cmd/prompt" in text
    assert '"cid": "demo-1", "ticket": "A012"' in text
    assert "mosquitto_sub -p 4321 -v -t careterm/demo/pad-w03/reply" in text


@pytest.mark.parametrize("screen", [VIRTUAL, NONE])
def test_without_a_screen_someone_sees_it_says_so_and_runs_headless(screen) -> None:
    text = _summary(screen)
    assert f"screen:   {screen.detail}; the demo runs headless" in text
    assert "window" not in text.replace("at window W03", "")  # nothing claims to be on screen
    assert not names_kiosk(text)  # the kiosk needs a screen: it is not run, so not mentioned
    assert "headless (no screen)" in text
    assert "keys:     here, in this terminal: P opens a prompt" in text
    assert "cmd/prompt" in text and "events/#" in text


def test_headless_on_a_pipe_reads_keys_from_standard_input() -> None:
    text = _summary(REAL, headless=True, tty=False)
    assert "screen:   not used (--headless)" in text
    assert "keys:     on the demo's standard input" in text


def test_the_demo_watcher_shows_only_topics_of_the_contracts_shapes() -> None:
    """SPEC 9.1: topics are parsed by terminal.topics; the watcher split them itself and
    showed an event sent one level below `events/rating` as pad-w03's rating."""
    event = json.dumps(
        {"type": "rating", "seq": 3, "data": {"score": 4, "scale": 4, "label": "非常满意"}}
    ).encode()
    base = "careterm/demo/pad-w03"
    assert demo.describe_message(f"{base}/events/rating", event) == (
        "pad-w03: rating 4/4 非常满意 (prompt None) [seq 3]"
    )
    for topic in (f"{base}/events/rating/x", f"{base}/x/events/rating", "other/demo/pad/reply"):
        assert demo.describe_message(topic, event) is None, topic
    reply = b'{"cid": "c1", "ok": true, "result": {}}'
    assert demo.describe_message(f"{base}/reply", reply) == "pad-w03: reply to c1: ok"
    assert demo.describe_message(f"{base}/reply/x", reply) is None


def test_only_prints_only_what_runs() -> None:
    pad_only = _summary(REAL, only="pad")
    assert not names_kiosk(pad_only) and "tickets" not in pad_only
    kiosk_only = _summary(REAL, only="kiosk")
    assert "kiosk-01 in its own window" in kiosk_only
    for pad_line in ("pad:", "keys:", "cmd/prompt", "1-4"):
        assert pad_line not in kiosk_only


def test_without_mosquitto_it_points_at_the_outbox_instead_of_a_broker() -> None:
    text = _summary(NONE, broker=False)
    assert "broker:   none (mosquitto is not installed)" in text
    assert "outbox list --config /d/pad.toml" in text
    assert "mosquitto_pub" not in text and "signs in" not in text


# -- how it tells a virtual screen ---------------------------------------------------------------


def _fake_proc(tmp_path: Path, *argvs: list[str]) -> Path:
    for pid, argv in enumerate(argvs, start=100):
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (tmp_path / "self").mkdir()
    return tmp_path


def test_an_xvfb_display_is_virtual_and_a_desktop_is_real(tmp_path: Path) -> None:
    proc = _fake_proc(
        tmp_path,
        ["/usr/bin/Xvfb", ":99", "-screen", "0", "1280x800x24"],
        ["/usr/lib/xorg/Xorg", ":0", "-nolisten", "tcp"],
    )
    assert demo.detect_screen({"DISPLAY": ":99"}, proc).kind == "virtual"
    assert demo.detect_screen({"DISPLAY": ":99.0"}, proc).kind == "virtual"
    assert demo.detect_screen({"DISPLAY": ":0"}, proc).kind == "real"
    assert demo.detect_screen({"DISPLAY": "workstation:10.0"}, proc).kind == "real"  # ssh -X
    assert demo.detect_screen({"WAYLAND_DISPLAY": "wayland-0"}, proc).kind == "real"
    assert demo.detect_screen({}, proc).kind == "none"


# -- the real thing ------------------------------------------------------------------------------


def _start_demo(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        careterm_cmd("demo", "--dir", str(tmp_path), *args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=careterm_env(**env),
    )


def _read_until(p: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"no {needle!r} in the demo's output:\n" + "\n".join(lines))


def _stop(p: subprocess.Popen[str]) -> tuple[str, str]:
    p.terminate()
    try:
        return p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()


@needs_broker
@pytest.mark.broker
@pytest.mark.slow
def test_headless_demo_rates_from_keys_on_standard_input_and_from_a_printed_prompt(
    tmp_path: Path,
) -> None:
    p = _start_demo(tmp_path, "--headless", "--only", "pad")
    try:
        head = _read_until(p, "staff sign_in E1024")
        text = "\n".join(head)
        assert "keys:     on the demo's standard input" in text
        assert not names_kiosk(text)
        pub = next(line for line in head if "mosquitto_pub" in line).split()
        port, topic = int(pub[pub.index("-p") + 1]), pub[pub.index("-t") + 1]

        # The printed prompt line, sent as printed (the test's client stands in for mosquitto_pub).
        sub = Subscriber(port, ["careterm/demo/pad-w03/reply"])
        sub.publish(topic, {"cid": "demo-1", "ticket": "A012"})
        _read_until(p, "reply to demo-1: ok prompt")
        time.sleep(1.0)  # a patient's press comes after min_response_ms (SPEC 9.3: 700 ms)
        p.stdin.write("4\n")
        p.stdin.flush()
        first = _read_until(p, "rating 4/4")[-1]
        assert "misuse" not in first

        # The P key opens a prompt; a press after it is a counted rating.
        p.stdin.write("p")
        p.stdin.flush()
        time.sleep(1.0)  # a patient's press comes after min_response_ms (SPEC 9.3: 700 ms)
        p.stdin.write("3")
        p.stdin.flush()
        second = _read_until(p, "rating 3/4")[-1]
        assert "misuse" not in second
        sub.close()
    finally:
        _out, err = _stop(p)
    assert "Traceback" not in err
    roster = json.loads((tmp_path / "roster.json").read_text())
    assert len(roster["appointments"]) == len(DEMO_PATIENTS)
    assert all("*" in a["name"] for a in roster["appointments"])  # masked, never full names
    stats = json.loads(
        run_careterm("outbox", "stats", "--config", str(tmp_path / "pad.toml")).stdout
    )
    assert stats["last_seq"] >= 3  # sign-in and two ratings, all stored
    assert "Traceback" not in (tmp_path / "pad.log").read_text()


@needs_broker
@pytest.mark.broker
@pytest.mark.slow
def test_on_a_virtual_screen_the_demo_says_so_and_never_claims_a_window(tmp_path: Path) -> None:
    screen = demo.detect_screen()
    if screen.kind != "virtual":
        pytest.skip(f"needs an Xvfb display (scripts/test runs under one); here: {screen.detail}")
    env = {k: v for k, v in os.environ.items() if k != "CARETERM_DEMO_SCREEN"}
    r = subprocess.run(
        careterm_cmd("demo", "--dir", str(tmp_path), "--for", "3"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**careterm_env(), **env},
    )
    assert r.returncode == 0, r.stderr
    assert "is a virtual screen (Xvfb); the demo runs headless" in r.stdout
    assert "in its own window" not in r.stdout and not names_kiosk(r.stdout)


def test_only_kiosk_without_a_screen_is_refused_with_what_to_do(tmp_path: Path) -> None:
    r = run_careterm("demo", "--dir", str(tmp_path), "--only", "kiosk", CARETERM_DEMO_SCREEN="none")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "careterm demo --only pad" in r.stderr
    # careterm is not on PATH after scripts/bootstrap: the command shown is the venv's script
    assert "bin/careterm demo --only pad" in r.stderr


# -- a newcomer's machine (audit of 2026-12-03) ------------------------------------------------


def _fake_mosquitto(tmp_path: Path) -> str:
    """A `mosquitto` on PATH that cannot start, as when its port is taken."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "mosquitto"
    exe.write_text('#!/bin/sh\necho "Error: Address already in use" >&2\nexit 1\n')
    exe.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_the_local_broker_says_why_mosquitto_did_not_start(tmp_path: Path, monkeypatch) -> None:
    from careterm.localbroker import Broker

    monkeypatch.setenv("PATH", _fake_mosquitto(tmp_path))
    with pytest.raises(RuntimeError, match="Address already in use"):
        Broker(tmp_path / "broker").start()


def test_a_mosquitto_that_does_not_start_leaves_the_demo_running_on_the_outbox(
    tmp_path: Path,
) -> None:
    r = subprocess.run(
        careterm_cmd(
            "demo", "--dir", str(tmp_path / "d"), "--headless", "--only", "pad", "--for", "2"
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env=careterm_env(PATH=_fake_mosquitto(tmp_path), CARETERM_DEMO_SCREEN="none"),
    )
    assert r.returncode == 0, r.stderr
    assert "mosquitto did not start" in r.stderr and "Address already in use" in r.stderr
    assert "Traceback" not in r.stderr
    assert "broker:   none (mosquitto did not start, see above)" in r.stdout
    assert "mosquitto_pub" not in r.stdout


def test_a_demo_folder_it_cannot_write_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    r = run_careterm("demo", "--dir", str(tmp_path / "afile"), "--for", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--dir" in r.stderr and "Traceback" not in r.stderr


def test_a_second_demo_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    import fcntl

    fd = os.open(tmp_path / ".demo.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the first demo, still running
        r = run_careterm("demo", "--dir", str(tmp_path), "--headless", "--for", "1")
    finally:
        os.close(fd)
    assert r.returncode == 2 and "another careterm demo is running" in r.stderr, r.stderr
    assert not (tmp_path / "pad.toml").exists()  # the first one's files untouched
