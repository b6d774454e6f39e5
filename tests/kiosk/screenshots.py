"""Writes docs/screenshots/kiosk-<screen>-<lang>-<WxH>.png for every screen, in both languages.

    KIVY_NO_ARGS=1 xvfb-run -a -s "-screen 0 1920x1920x24" python tests/kiosk/screenshots.py 1280x800
(one orientation per process: Kivy has one window per process)."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]

from fakes import MemoryPrinter  # noqa: E402
from uikit import UI  # noqa: E402

from careterm.demo_data import demo_directory, demo_survey  # noqa: E402
from drivers.base import DeviceState  # noqa: E402
from drivers.card_reader.base import CardRead  # noqa: E402
from kiosk.checkin import CheckinLog  # noqa: E402
from kiosk.feedback import FeedbackForm  # noqa: E402
from kiosk.service import KioskService  # noqa: E402
from terminal.config import parse_config  # noqa: E402
from terminal.uplink import Uplink  # noqa: E402

TOKEN = "f" * 32


def roster(now: datetime) -> dict:
    def row(i: int, minutes: int, dept: str, name: str, doctor: str, room: str, q: str) -> dict:
        start = (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
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
        }

    return {
        "v": 1,
        "date": now.date().isoformat(),
        "generated": now.isoformat(),
        "appointments": [
            row(42, 15, "cardio", "心内科", "李明", "门诊3楼 305诊室", "B023"),
            row(43, 200, "gastro", "消化内科", "陈芳", "门诊4楼 402诊室", "D007"),
            row(44, -150, "ortho", "骨科", "刘洋", "门诊2楼 203诊室", "G015"),
            row(45, 25, "eye", "眼科", "吴敏", "门诊6楼 603诊室", "Y031"),
        ],
    }


def main(size: str, out: Path) -> None:
    w, h = (int(x) for x in size.split("x"))
    data = Path(tempfile.mkdtemp())
    now = datetime.now().astimezone()
    (data / "roster.json").write_text(json.dumps(roster(now), ensure_ascii=False))
    (data / "directory.json").write_text(json.dumps(demo_directory(), ensure_ascii=False))
    (data / "survey.json").write_text(json.dumps(demo_survey(), ensure_ascii=False))
    cfg = parse_config(
        {
            "device": {"id": "kiosk-01", "role": "kiosk", "site": "main", "data_dir": str(data)},
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "kiosk": {
                "idle_timeout_s": 600,
                "maintenance_pin_sha256": "03ac674216f3e15c761ee1a5e255f067"
                "953623c8b388b4459e13f978d7c846f4",
            },
        }
    )
    printer = MemoryPrinter()
    svc = KioskService(cfg, Uplink(cfg), printer)
    svc.start()
    ui = UI(svc, (w, h))
    card = CardRead("id_card", TOKEN, "1101**********7774", "张*")
    out.mkdir(parents=True, exist_ok=True)

    def shot(name: str, lang: str) -> None:
        if ui.root.view.lang != lang:
            svc.set_language(lang)
            ui.pump_until(lambda: ui.root.view.lang == lang)
        ui.shot(str(out / f"kiosk-{name}-{lang}-{w}x{h}.png"))

    def home() -> None:
        svc.go("home")
        ui.wait_screen("home")

    for lang in ("zh", "en"):
        # Each language starts with nobody checked in, so "done" is a first check-in.
        (data / "checkins.json").unlink(missing_ok=True)
        svc.call(lambda: setattr(svc, "checkins", CheckinLog(data)))
        home()
        shot("home", lang)
        svc.go("checkin")
        ui.wait_screen("checkin")
        shot("checkin", lang)
        svc.card_read(card)
        ui.wait_screen("appointments")
        shot("appointments", lang)
        ui.key("down", 2)  # to the too-early appointment
        ui.key("enter")
        ui.wait_screen("refused")
        shot("refused", lang)
        svc.back()
        ui.wait_screen("appointments")
        ui.key("enter")
        ui.wait_screen("done")
        shot("done", lang)
        printer.set(DeviceState.ERROR, "paper out")
        svc.card_read(card)
        ui.wait_screen("appointments")
        ui.key("enter")  # the eye clinic now has the focus; out of paper: ticket on screen
        ui.wait_screen("done")
        shot("ticket", lang)
        printer.set(DeviceState.OK)
        svc.card_read(CardRead("medical_card", "0" * 32, "1234****5678"))
        ui.wait_screen("noappt")
        shot("noappt", lang)
        svc.go("guide")
        ui.wait_screen("guide")
        shot("guide", lang)
        ui.root.local["dept"] = "cardio"
        ui.root.rebuild()
        shot("guide-department", lang)
        svc.go("feedback")
        ui.wait_screen("feedback")
        shot("feedback", lang)
        ui.tap(ui.buttons()[2])  # complaint
        ui.pump_until(lambda: ui.root.local.get("step") == "department")
        shot("feedback-department", lang)
        ui.tap(ui.buttons()[1])
        ui.pump_until(lambda: ui.root.local.get("step") == "topics")
        ui.tap(ui.buttons()[1])
        shot("feedback-topics", lang)
        ui.root.local["step"] = "phone"
        ui.root.rebuild()
        for d in "13812345678":
            ui.key(d)
        shot("feedback-phone", lang)
        form: FeedbackForm = ui.root.local["form"]
        svc.submit_feedback(form)
        ui.wait_screen("feedback_done")
        shot("feedback-done", lang)
        svc.go("survey")
        ui.wait_screen("survey")
        shot("survey", lang)
        ui.key("4")
        ui.key("5")
        ui.key("3")
        ui.wait_screen("notice")
        shot("survey-done", lang)
        svc.go("guide")
        ui.wait_screen("guide")
        svc.set_language(lang)
        svc.session.idle_timeout_s = 0.5  # show the idle countdown now
        ui.pump_until(lambda: ui.root.view.countdown is not None)
        shot("idle", lang)
        svc.session.idle_timeout_s = 600
        svc.activity()
        svc.go("pin")
        ui.wait_screen("pin")
        for d in "12":
            ui.key(d)
        shot("pin", lang)
        svc.enter_pin("1234")
        ui.wait_screen("maintenance")
        shot("maintenance", lang)
    ui.close()
    svc.stop()


if __name__ == "__main__":
    import traceback

    try:
        main(
            sys.argv[1] if len(sys.argv) > 1 else "1280x800",
            Path(sys.argv[2]) if len(sys.argv) > 2 else HERE.parent.parent / "docs" / "screenshots",
        )
    except BaseException:
        traceback.print_exc(file=sys.__stderr__)  # Kivy's logger swallows sys.stderr
        raise
