"""`careterm demo --headless`: a demo site, a private broker, the pad online and its clerk signed in."""

from __future__ import annotations

import json
import shutil

import pytest

from careterm.demo_data import DEMO_PATIENTS
from terminal import resident_id

from ..conftest import run_careterm

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_demo_patients_carry_valid_id_numbers() -> None:
    for number, _name, kind, _dep, _minutes in DEMO_PATIENTS:
        if kind == "id_card":
            assert resident_id.is_valid(number)


@pytest.mark.skipif(
    not shutil.which("mosquitto") and not shutil.os.path.exists("/usr/sbin/mosquitto"),
    reason="mosquitto not installed",
)
def test_headless_demo_runs_and_stops_cleanly(tmp_path) -> None:
    r = run_careterm("demo", "--headless", "--for", "6", "--dir", str(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "mosquitto_sub -p" in r.stdout
    roster = json.loads((tmp_path / "roster.json").read_text())
    assert len(roster["appointments"]) == len(DEMO_PATIENTS)
    assert all(len(a["token"]) == 32 for a in roster["appointments"])
    assert all("*" in a["name"] for a in roster["appointments"])  # masked, never full names
    stats = run_careterm("outbox", "stats", "--config", str(tmp_path / "pad.toml"))
    body = json.loads(stats.stdout)
    assert body["last_seq"] >= 1  # the clerk's sign-in is a staff event
    assert body["waiting_for_broker"] == 0
    log = (tmp_path / "pad.log").read_text()
    assert "staff seq 1 stored" in log
    assert "Traceback" not in log
