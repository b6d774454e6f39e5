"""Writes docs/screenshots/kiosk-<screen>-<lang>[-care]-<WxH>.png for every screen (the same
walk as the fit test, with the demo's names), and kiosk-printed-tickets.png (58 mm previews).

    KIVY_NO_ARGS=1 xvfb-run -a -s "-screen 0 1920x1920x24" \\
        .venv/bin/python -m tests.kiosk.screenshots 1080x1920 [zh,en,zh-care]

(one window size per process: Kivy has one window per process)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "docs" / "screenshots"


def shots(size: str, modes: list[str]) -> None:
    from .tour import make_service, tour
    from .uikit import UI

    w, h = (int(x) for x in size.split("x"))
    svc = make_service(Path(tempfile.mkdtemp()) / "data")
    ui = UI(svc, (w, h))
    OUT.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        lang, _, care = mode.partition("-")
        svc.set_care(bool(care))
        ui.pump_until(lambda c=bool(care): ui.root.view.care is c)

        def visit(name: str, lang=lang, care=care) -> None:
            ui.shot(str(OUT / f"kiosk-{name}-{lang}{'-care' if care else ''}-{w}x{h}.png"))

        tour(svc, ui, visit, lang)
    ui.close()
    svc.stop()


def tickets() -> None:
    """The 58 mm previews of a check-in ticket (long names), a reprint in English, a slip."""
    from datetime import datetime

    from PIL import Image

    from drivers.printer.escpos_build import TicketStyle
    from drivers.printer.preview import render
    from kiosk.roster import Roster
    from kiosk.ticket import Place, checkin_ticket, feedback_slip

    from .tour import roster

    now = datetime.now().astimezone().replace(hour=9, minute=50, second=0, microsecond=0)
    a = Roster.parse(roster(now, True)).appointments[0]
    b = Roster.parse(roster(now, False)).appointments[3]  # no doctor
    style = TicketStyle(columns=32)
    docs = [
        checkin_ticket(
            a,
            Place("门诊楼5层", "电梯出来右转约50米", ""),
            "zh",
            "kiosk-01",
            now,
            hospital="市第一人民医院",
            columns=32,
        ),
        checkin_ticket(
            b,
            Place("门诊楼6层", "电梯正对", "Ophthalmology"),
            "en",
            "kiosk-01",
            now,
            True,
            hospital="City No.1 People's Hospital",
            columns=32,
        ),
        feedback_slip(
            "F-20261123-kiosk-01-0007",
            "complaint",
            "心内科",
            ["等候时间长"],
            True,
            "zh",
            now,
            hospital="市第一人民医院",
            reply_days=3,
            help_desk="门诊楼1层服务台",
            columns=32,
        ),
    ]
    images = [render(d, style) for d in docs]
    gap = 24
    sheet = Image.new(
        "RGB",
        (
            sum(i.width for i in images) + gap * (len(images) + 1),
            max(i.height for i in images) + 2 * gap,
        ),
        "#d0d4da",
    )
    x = gap
    for img in images:
        sheet.paste(img, (x, gap))
        x += img.width + gap
    sheet.save(OUT / "kiosk-printed-tickets.png")


if __name__ == "__main__":
    import traceback

    try:
        if sys.argv[1:2] == ["tickets"]:
            tickets()
        else:
            size = sys.argv[1] if len(sys.argv) > 1 else "1080x1920"
            modes = (sys.argv[2] if len(sys.argv) > 2 else "zh,en,zh-care").split(",")
            shots(size, modes)
    except BaseException:
        traceback.print_exc(file=sys.__stderr__)  # Kivy's logger swallows sys.stderr
        raise
