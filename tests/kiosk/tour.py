"""A walk through every screen a patient (or a technician) can reach, driving the real window:
used by the fit test (tests/kiosk/test_fit.py) and the screenshot script (screenshots.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from careterm.demo_data import demo_directory, demo_survey
from drivers.base import DeviceState
from drivers.card_reader.base import CardRead
from kiosk.service import KioskService
from terminal.config import parse_config
from terminal.privacy import lookup_token
from terminal.uplink import Uplink

from .fakes import MemoryPrinter

TOKEN = "f" * 32
SALT = b"tour-salt"
PIN = "03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4"  # 1234
LONG_DEPT = "内分泌与代谢病科（糖尿病专病门诊）甲状腺与骨质疏松联合门诊"  # 30 characters
LONG_DOCTOR = "欧阳娜娜·阿卜杜热合曼·买买提江·艾尼瓦尔·司马相如·诸葛孔明"  # 30
LONG_ROOM = "门诊综合楼B座5楼东区第512诊室（近3号电梯）左转直行到底"  # 30


def roster(now: datetime, long_names: bool) -> dict[str, Any]:
    def row(i: int, minutes: int, dept: str, name: str, doctor: str, room: str, q: str) -> dict:
        start = (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
        if long_names:
            name, doctor, room = LONG_DEPT, LONG_DOCTOR, LONG_ROOM
        return {
            "id": f"A{now:%Y%m%d}-{i:04d}",
            "token": TOKEN,
            "name": "张*三",
            "department_id": dept,
            "department": name,
            "doctor": doctor,
            "room": room,
            "slot_start": start.isoformat(),
            "slot_end": (start + timedelta(minutes=30)).isoformat(),
            "queue_no": q,
            "lookup": [lookup_token(SALT, "phone_birth", "1381234567819560312")],
        }

    return {
        "v": 1,
        "date": now.date().isoformat(),
        "generated": now.isoformat(),
        "appointments": [
            row(42, 15, "cardio", "心内科", "李明", "门诊3楼 305诊室", "B023"),
            row(43, 200, "gastro", "消化内科", "陈芳", "门诊4楼 402诊室", "D007"),
            row(44, -150, "ortho", "骨科", "刘洋", "门诊2楼 203诊室", "G015"),
            row(45, 25, "eye", "眼科", "", "门诊6楼 603诊室", "Y031"),
        ],
    }


def directory(long_names: bool) -> dict[str, Any]:
    doc = demo_directory()
    if long_names:
        for d in doc["departments"]:
            d["name"] = LONG_DEPT
            d["name_en"] = "Endocrinology and Metabolism (Diabetes Clinic)"
            d["floor"] = "门诊综合楼B座5楼东区（近3号电梯）"
            d["location"] = LONG_ROOM
        for d in doc["doctors"]:
            d["name"] = LONG_DOCTOR
    return doc


def survey() -> dict[str, Any]:
    doc = demo_survey()
    doc["questions"].append(
        {
            "id": "q4",
            "text": "您会向亲友推荐本院吗?",
            "text_en": "Would you recommend this hospital to family and friends?",
            "scale": 3,
            "labels": ["不会", "不一定", "会"],
            "labels_en": ["No", "Not sure", "Yes"],
        }
    )
    return doc


def make_service(data: Path, long_names: bool = False, **kiosk: Any) -> KioskService:
    now = datetime.now().astimezone()
    docs = data / "documents"  # where terminal.documents keeps them
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "roster.json").write_text(json.dumps(roster(now, long_names), ensure_ascii=False))
    (docs / "directory.json").write_text(json.dumps(directory(long_names), ensure_ascii=False))
    (docs / "survey.json").write_text(json.dumps(survey(), ensure_ascii=False))
    (data / "site.salt").write_bytes(SALT)
    cfg = parse_config(
        {
            "device": {"id": "kiosk-01", "role": "kiosk", "site": "main", "data_dir": str(data)},
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "privacy": {"salt_file": str(data / "site.salt")},
            "kiosk": {
                "idle_timeout_s": 600,
                "maintenance_pin_sha256": PIN,
                "hospital_name": "市第一人民医院"
                if not long_names
                else "某某市第一人民医院（某某大学附属第一医院）门诊部",
                "hospital_name_en": "City No.1 People's Hospital",
                "help_desk": "门诊楼1层服务台",
                "help_desk_en": "the help desk on the ground floor",
                "location": "门诊楼1层大厅东侧",
                "booking_hint": "也可关注医院公众号预约。",
                "booking_hint_en": "You can also book in the hospital's app.",
                **kiosk,
            },
        }
    )
    svc = KioskService(cfg, Uplink(cfg), MemoryPrinter())
    svc.start()
    return svc


def tour(svc: KioskService, ui: Any, visit: Callable[[str], None], lang: str) -> None:
    """Visit every screen in `lang`: `visit(name)` is called with each one on screen."""
    card = CardRead("id_card", TOKEN, "1101**********7774", "张*")
    printer: MemoryPrinter = svc.printer

    def lang_is(want: str) -> None:
        if ui.root.view.lang != want:
            svc.set_language(want)
            ui.pump_until(lambda: ui.root.view.lang == want, what="language")

    def go(where: str, screen: str | None = None) -> None:
        svc.go(where)
        ui.wait_screen(screen or where)
        lang_is(lang)

    def settle() -> None:
        ui.pump_for(0.05)

    go("home")
    (svc.data_dir / "checkins.json").unlink(missing_ok=True)
    svc.call(lambda: svc.machine.checked.clear())
    visit("home")
    go("checkin")
    visit("checkin")
    svc.go("lookup")
    ui.wait_screen("lookup")
    visit("lookup")
    svc.lookup_method("phone_birth")
    ui.pump_until(lambda: getattr(ui.root.view.data, "method", "") == "phone_birth")
    for d in "1381234567":
        svc.lookup_key(d)
    svc.lookup_key("ok")
    ui.pump_until(lambda: ui.root.view.data.error == "lk_phone_bad", what="phone error")
    settle()
    visit("lookup-phone")
    svc.card_read(card)
    ui.wait_screen("appointments")
    visit("appointments")
    too_early = next(i.id for i in ui.root.view.data.items if i.state == "too_early")
    svc.choose(too_early)
    ui.wait_screen("refused")
    visit("refused")
    svc.back()
    ui.wait_screen("appointments")
    first = ui.root.view.data.items[ui.root.view.data.focus].id
    svc.choose(first)
    ui.wait_screen("done")
    visit("done")
    printer.set(DeviceState.ERROR, "paper out")
    svc.card_read(card)
    ui.wait_screen("appointments")
    nxt = next(i.id for i in ui.root.view.data.items if i.state == "checkin")
    svc.choose(nxt)
    ui.wait_screen("done")
    visit("ticket")
    printer.set(DeviceState.OK)
    for name, read in (
        ("noappt", CardRead("medical_card", "0" * 32, "1234****5678")),
        ("unrecognised", CardRead("unknown", None, "", valid=False, problem="unrecognised")),
        ("check-digit", CardRead("unknown", None, "", valid=False, problem="check_digit")),
        ("incomplete", CardRead("id_card", None, "", valid=False, problem="incomplete")),
        ("qr-used", CardRead("appointment_qr", None, "A", appointment=first)),
        ("qr-other-day", CardRead("appointment_qr", None, "A", appointment="A20200101-0001")),
    ):
        svc.card_read(read)
        ui.wait_screen("problem")
        ui.pump_until(lambda: ui.root.view.data.problem != "", what="problem")
        settle()
        visit(name)
    # an input the kiosk failed to handle (kiosk.service._answered): "go to the help desk"
    svc.call(lambda: svc._run_effects(svc.machine.failed()))
    ui.pump_until(lambda: ui.root.view.data.problem == "fault", what="the fault screen")
    settle()
    visit("fault")
    go("guide")
    visit("guide")
    svc.guide(dept="cardio")
    ui.pump_until(lambda: ui.root.view.data.dept == "cardio", what="department page")
    settle()
    visit("guide-department")
    go("feedback")
    visit("feedback")
    svc.feedback("category", "complaint")
    ui.pump_until(lambda: ui.root.view.data.step == "department")
    settle()
    visit("feedback-department")
    svc.feedback("department", "cardio")
    svc.feedback("topic", "等候时间长")
    ui.pump_until(lambda: ui.root.view.data.topics == ("等候时间长",))
    settle()
    visit("feedback-topics")
    svc.feedback("next")
    for d in "13812345678":
        svc.feedback("digit", d)
    ui.pump_until(lambda: ui.root.view.data.phone == "13812345678")
    settle()
    visit("feedback-phone")
    svc.feedback("submit")
    ui.wait_screen("feedback_done")
    visit("feedback-done")
    go("survey")
    visit("survey")
    for _ in range(3):
        qid = ui.root.view.data.qid
        svc.survey_answer(4)
        ui.pump_until(lambda q=qid: getattr(ui.root.view.data, "qid", "") != q)
    settle()
    visit("survey-3-point")
    svc.survey_answer(3)
    ui.wait_screen("notice")
    visit("survey-done")
    svc.help()
    ui.wait_screen("help")
    visit("help")
    go("guide")
    m = svc.machine
    svc.call(lambda: setattr(m, "_last_input", m.mono() - m.idle_timeout() - 1))
    ui.pump_until(lambda: ui.root._overlay is not None, what="idle overlay")
    visit("idle")
    svc.activity()
    ui.pump_until(lambda: ui.root._overlay is None, what="overlay gone")
    go("pin")
    for d in "12":
        ui.key(d)
    visit("pin")
    svc.enter_pin("1234")
    ui.wait_screen("maintenance")
    visit("maintenance")
    svc.maintenance("close")
    ui.wait_screen("home")
