"""`careterm kiosk`: the role check, and a real process that stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess

import pytest

from ..conftest import careterm_cmd, careterm_env, run_careterm, wait_for


def test_kiosk_refuses_a_pad_config_naming_the_key(config_writer):
    path = config_writer(role="rating_pad")
    r = run_careterm("kiosk", "--config", str(path))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "device.role" in r.stderr and "kiosk" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.display
@pytest.mark.slow
def test_kiosk_process_runs_windowed_and_stops_on_sigterm(tmp_path):
    from careterm.demo import build_site

    files = build_site(tmp_path / "site", "mqtt://127.0.0.1:1")
    log = tmp_path / "kiosk.log"
    with open(log, "wb") as out:
        p = subprocess.Popen(
            careterm_cmd("kiosk", "--config", str(files["kiosk"]), "--windowed"),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=careterm_env(KIVY_NO_ARGS="1", CARETERM_KIOSK_SIZE="1080x1920"),
        )
        try:
            wait_for(
                lambda: b"kiosk kiosk-01 started" in log.read_bytes(), 30, what="kiosk start-up"
            )
            wait_for(lambda: b"first frame drawn" in log.read_bytes(), 30, what="the window")
            # The screen comes first: the documents are read and the printer is opened once the
            # first frame is on the screen (not before it); the card reader listens from the start.
            wait_for(lambda: b"appointments" in log.read_bytes(), 60, what="the roster read")
            wait_for(lambda: b"printer: " in log.read_bytes(), 30, what="the printer opened")
            wait_for(lambda: b"mqtt: " in log.read_bytes(), 30, what="the link's first attempt")
            text = log.read_text(errors="replace")
            drawn = text.index("first frame drawn")
            assert text.index("roster of ") > drawn
            assert text.index("mqtt: ") > drawn  # the link (paho, the outbox) is made after it
            assert text.index("card_reader: ") < drawn
            assert text.index("printer: ") > drawn
            assert "[INFO" not in text  # Kivy logs through careterm's logging, once
            assert p.poll() is None
            p.send_signal(signal.SIGTERM)
            assert p.wait(15) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    assert "110101199003077774" not in text  # no raw ID number in the log
