"""The apps keep their last good documents (issue 11): a kiosk given `{}` keeps its directory, a
roster for another date never replaces today's on disk, and each refusal is a `document` alert."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from kiosk.service import KioskService
from terminal.config import parse_config
from terminal.uplink import Uplink

NOW = datetime(2026, 11, 23, 9, 0).astimezone()


def roster(day: str) -> bytes:
    row = {
        "id": "A20261123-0001",
        "token": "0" * 32,
        "department_id": "cardio",
        "department": "心内科",
        "slot_start": f"{day}T09:00:00+08:00",
        "slot_end": f"{day}T09:30:00+08:00",
        "queue_no": "B001",
    }
    return json.dumps({"v": 1, "date": day, "appointments": [row]}).encode()


DIRECTORY = json.dumps(
    {"v": 1, "departments": [{"id": "cardio", "name": "心内科", "floor": "3"}]}
).encode()


def kiosk(tmp_path: Path) -> tuple[KioskService, Uplink]:
    cfg = parse_config(
        {
            "device": {
                "id": "kiosk-01",
                "role": "kiosk",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
        }
    )
    up = Uplink(cfg)  # not started: nothing to send, the outbox still records
    svc = KioskService(cfg, up, now=lambda: NOW)
    svc.start()
    return svc, up


def document_alerts(up: Uplink) -> list[dict]:
    out = []
    for ev in up.outbox.iter_all():
        data = json.loads(ev.payload)["data"]
        if data.get("kind") == "document":
            out.append(data)
    return out


def test_a_kiosk_keeps_its_directory_and_todays_roster(tmp_path: Path) -> None:
    svc, up = kiosk(tmp_path)
    try:
        svc.on_directory("careterm/main/directory", DIRECTORY)
        svc.on_roster("careterm/main/roster", roster("2026-11-23"))
        svc.call(lambda: None)
        assert svc.call(lambda: len(svc.directory.departments)) == 1
        stored = (tmp_path / "data" / "roster.json").read_bytes()
        svc.on_directory("careterm/main/directory", b"{}")
        svc.on_roster("careterm/main/roster", roster("2026-11-24"))  # tomorrow's: kept aside
        svc.on_roster("careterm/main/roster", b'{"v":1,"date":"2026-11-23","appointments":[]}')
        svc.call(lambda: None)
        assert svc.call(lambda: len(svc.directory.departments)) == 1
        assert (tmp_path / "data" / "roster.json").read_bytes() == stored
        assert svc.call(lambda: svc.rosters.today(NOW.date())) is not None
        assert svc.documents["roster"].aside() == [NOW.date() + timedelta(days=1)]
        assert {a["document"] for a in document_alerts(up)} == {"directory", "roster"}
        assert svc.is_alive() and svc.view.screen == "home"
    finally:
        svc.stop()
        up.stop()
