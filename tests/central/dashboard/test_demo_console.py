"""`careterm demo` starts the site console over the demo's database and prints how to log in."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import careterm_cmd, careterm_env, wait_for

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.skipif(
        not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists(),
        reason="mosquitto not installed",
    ),
]


def test_demo_prints_the_console_url_and_a_login_that_works(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    with out.open("wb") as f:
        demo = subprocess.Popen(
            careterm_cmd("demo", "--headless", "--for", "60", "--dir", str(tmp_path / "site")),
            stdout=f,
            stderr=subprocess.STDOUT,
            env=careterm_env(),
        )
    try:
        line = wait_for(
            lambda: re.search(
                r"console:\s+(http://\S+)\s+\(log in as (\S+) / (\S+);", out.read_text()
            ),
            30,
            what="the console line",
        )
        url, name, password = line.group(1).rstrip("/"), line.group(2), line.group(3)
        client = httpx.Client(base_url=url, timeout=10, follow_redirects=True)

        def logged_in() -> bool:
            try:
                r = client.post("/login", data={"user": name, "password": password})
            except httpx.TransportError:
                return False
            return r.status_code == 200 and "careterm demo" in r.text

        wait_for(logged_in, 30, 0.3, what="log-in to the demo console")

        def pad_online() -> bool:
            devs = {d["device"]: d for d in client.get("/api/state").json().get("devices", [])}
            return devs.get("pad-w03", {}).get("state") == "online"

        wait_for(pad_online, 30, 0.5, what="the demo pad online in the console")
        client.close()
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(5)
    time.sleep(0.1)
    log = (tmp_path / "site" / "console.log").read_text()
    assert "Traceback" not in log
