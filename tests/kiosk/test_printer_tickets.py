"""Tickets as the printer gets them (decoded ESC/POS: GB18030 in Chinese mode, no number split
across a wrap, no floor twice, hospital on top, no empty doctor) and printer faults that must
never stop the kiosk: a file printer whose folder cannot be made, paper near end, a printer
that never answers its status."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from drivers.base import DeviceState
from drivers.printer.document import Text
from drivers.printer.escpos_build import TicketStyle, build
from drivers.printer.escpos_decode import decode
from drivers.printer.factory import FaultyPrinter
from kiosk.roster import Roster
from kiosk.runner import Kiosk
from kiosk.ticket import Place, checkin_ticket, fit_lines, where_text
from terminal.config import parse_config

from ..conftest import ROOT, wait_for
from .conftest import card

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 9, 50, tzinfo=CST)


def appointment(**over):
    row = {
        "id": "A20261123-0042",
        "token": "7" * 32,
        "name": "张*三",
        "department_id": "endo",
        "department": "内分泌与代谢病科（糖尿病专病门诊）",
        "doctor": "李明",
        "room": "门诊综合楼B座5楼 东区 第512诊室（近3号电梯）",
        "slot_start": "2026-11-23T10:00:00+08:00",
        "slot_end": "2026-11-23T10:30:00+08:00",
        "queue_no": "B023",
        **over,
    }
    return Roster.parse({"v": 1, "date": "2026-11-23", "appointments": [row]}).appointments[0]


def test_decoded_ticket_is_gb18030_with_hospital_on_top_and_no_number_split():
    doc = checkin_ticket(
        appointment(),
        Place("门诊综合楼5层", "出电梯右转约50米, 经过120号自助机", ""),
        "zh",
        "kiosk-01",
        NOW,
        hospital="市第一人民医院",
        columns=32,
    )
    t = decode(build(doc, TicketStyle(columns=32)))
    lines = [ln.text.strip() for ln in t.lines if ln.text.strip()]
    assert lines[0] == "市第一人民医院"
    assert any(ln.chinese for ln in t.lines if "医院" in ln.text)  # FS & on: GB18030 mode
    assert [ln.text.strip() for ln in t.lines if ln.double] == ["B023"]
    joined = "\n".join(lines)
    for number in ("50", "120", "512", "3", "2026-11-23", "10:00-10:30"):
        # every number and time is whole on one line
        assert any(number in ln for ln in lines), (number, lines)
    for a, b in zip(lines, lines[1:], strict=False):
        assert not (re.search(r"[0-9]$", a) and re.match(r"^[0-9]", b)), (a, b)
    assert "门诊综合楼5层 门诊综合楼B座5楼" not in joined.replace("\n", "")  # floor once
    assert t.qr == ["CT1:A20261123-0042"]


def test_no_empty_doctor_and_fit_lines_never_cut_a_number():
    doc = checkin_ticket(appointment(doctor=""), Place(), "zh", "kiosk-01", NOW)
    texts = [b.text for b in doc.blocks if isinstance(b, Text)]
    assert not any(t.startswith("医生") for t in texts)
    assert not any("· ·" in t or "· ·" in t for t in texts)
    assert fit_lines("距离约50米", 7) == ["距离约", "50米"]
    assert fit_lines("ABCDEFGHIJKLMNOP", 8) == ["ABCDEFGH", "IJKLMNOP"]  # only an over-long run
    assert where_text("门诊楼3层", "门诊3楼 305诊室") == "门诊3楼 305诊室"
    assert where_text("住院楼2层", "门诊3楼 305诊室") == "住院楼2层 门诊3楼 305诊室"
    assert where_text("", "305诊室") == "305诊室" and where_text("5F", "") == "5F"


def kiosk_cfg(tmp_path, **printer):
    return parse_config(
        {
            "device": {
                "id": "kiosk-01",
                "role": "kiosk",
                "site": "main",
                "data_dir": str(tmp_path / "data"),
            },
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "printer": printer,
            "kiosk": {"voice": False},
        }
    )


def test_a_file_printer_whose_folder_cannot_be_made_is_a_printer_fault_not_a_crash(
    tmp_path, harness
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    cfg = kiosk_cfg(tmp_path, driver="file", device=str(blocker / "tickets" / "t.bin"))
    k = Kiosk(cfg)  # opens the drivers as `careterm kiosk` does
    assert isinstance(k.printer, FaultyPrinter) and k.printer.state == DeviceState.ERROR
    k.uplink.stop()
    # the check-in goes on, ticket on screen, and the printer fault is on the status line
    svc = harness.start(printer=FaultyPrinter("cannot open: no folder"))
    assert "status_printer" in svc.view.status
    svc.card_read(card())
    v = harness.wait_view("appointments")
    svc.choose(v.data.items[1].id)
    assert harness.wait_view("done").data.ticket == "failed"
    assert harness.events("checkin")[0]["data"]["ticket"] == "failed"
    # and `config check` does not call that config fine
    toml = tmp_path / "k.toml"
    toml.write_text(
        f"""[device]
id = "kiosk-01"
role = "kiosk"
site = "main"
data_dir = "{tmp_path / "data"}"
[printer]
driver = "file"
device = "{blocker / "tickets" / "t.bin"}"
"""
    )
    r = subprocess.run(
        [sys.executable, "-m", "careterm", "config", "check", str(toml)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "printer.device" in r.stderr and "cannot be created" in r.stderr


def test_paper_near_end_and_a_printer_that_never_answers_raise_warnings(harness):
    from drivers.printer.base import PrinterStatus

    svc = harness.start()
    harness.printer._status_changed(PrinterStatus(online=True, paper_near_end=True))
    harness.printer._status_changed(PrinterStatus(online=True, paper_near_end=True))

    class Transport:
        can_read = True

    harness.printer.transport = Transport()  # a printer that could answer DLE EOT ...
    harness.printer.set(DeviceState.UNKNOWN, "status not readable")  # ... but never does
    wait_for(lambda: "status_printer_unknown" in svc.view.status, 3, what="status line")
    alerts = [e["data"] for e in harness.events("alert")]
    assert [(a["kind"], a["severity"], a["state"]) for a in alerts] == [
        ("printer", "warning", "paper_near_end"),
        ("printer", "warning", "no_status"),
    ]
    json.dumps(alerts)
