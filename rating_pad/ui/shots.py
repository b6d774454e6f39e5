"""Screenshots of every pad screen at one size: `python -m rating_pad.ui.shots --size 800x480
--out DIR` writes `pad-<screen>-<WxH>.png`. The views come from the real state machine."""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from rating_pad.machine import PadMachine, PadView, Staff
from terminal.config import parse_config


def demo_photo() -> str:
    """A drawn head-and-shoulders portrait as base64 JPEG (no real person)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (240, 300), (206, 222, 238))
    d = ImageDraw.Draw(img)
    d.ellipse((20, 200, 220, 400), fill=(40, 70, 120))
    d.polygon([(100, 200), (140, 200), (120, 260)], fill=(245, 245, 250))
    d.ellipse((70, 70, 170, 190), fill=(236, 200, 170))
    d.chord((66, 56, 174, 150), 180, 360, fill=(40, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


FIVE = {
    "labels": ["很不满意", "不满意", "一般", "满意", "非常满意"],
    "alert_at_or_below": 2,
    "reasons": [
        "等候时间长",
        "服务态度差",
        "业务不熟练",
        "收费有误",
        "环境嘈杂",
        "指引不清",
        "其他",
    ],
}


def views(five: bool = False) -> Iterator[tuple[str, PadView]]:
    """(screen name, view) for every screen, driven through the machine with a fake clock;
    `five`: a five-key scale with seven reasons (the most crowded screens)."""
    rating: dict[str, object] = {"staff_required": True}
    raw: dict[str, object] = {
        "device": {"id": "pad-w03", "role": "rating_pad", "site": "main"},
        "window": {"id": "W03", "name": "收费处 3号窗口"},
        "rating": rating,
    }
    if five:
        rating.update(FIVE)
        raw["buttons"] = {"keys": {str(i): i for i in range(1, 6)}}
    cfg = parse_config(raw)
    m = PadMachine(cfg)
    clerk = Staff(staff="E1024", name="王芳", title="收费员", photo=demo_photo(), token="t")
    m.set_directory([clerk])
    t = 1000.0
    yield "closed", m.view(t)
    open_cfg = cfg.model_copy(
        update={"rating": cfg.rating.model_copy(update={"staff_required": False})}
    )
    yield "idle-open", PadMachine(open_cfg).view(t)
    m.sign_in(clerk, t)
    yield "idle", m.view(t)
    m.prompt(t)
    yield "prompt", m.view(t + 2.2)
    m.key("4", t + 3)
    yield "thanks", m.view(t + 3)
    m.prompt(t + 10)
    m.key("1", t + 11)
    yield "reason", m.view(t + 12.4)
    m.tick(t + 30)
    m.tick(t + 40)
    m.pause(t + 41)
    yield "paused", m.view(t + 41)
    m.resume(t + 42)
    v = m.view(t + 42)
    v.fault = "storage"
    yield "fault", v
    free = PadMachine(
        cfg.model_copy(update={"rating": cfg.rating.model_copy(update={"mode": "free"})})
    )
    free.sign_in(clerk, t)
    yield "idle-free", free.view(t)
    free.staff_card("a card nobody registered", t + 1)
    yield "notice", free.view(t + 1)
    m.key("4", t + 43)  # a press with no prompt: kept as misuse, and a hint
    v = m.view(t + 43)
    v.link, v.waiting = "offline", 3
    yield "offline", v


def overflows(root: object) -> list[str]:
    """Labels whose text does not fit: wrapped text taller than the label (cut off or over a
    neighbour), or a Latin word wider than the label (broken in the middle)."""
    from kivy.core.text import Label as CoreLabel
    from kivy.uix.label import Label

    bad = []
    for w in root.walk():  # type: ignore[attr-defined]
        if not isinstance(w, Label) or not w.text or w.shorten:
            continue
        need_h = w._label._internal_size[1] if w._label is not None else 0
        if need_h > w.height + 2:
            bad.append(f"{w.text!r} needs {need_h:.0f} px height, has {w.height:.0f}")
        measure = CoreLabel(font_name=w.font_name, font_size=w.font_size, bold=w.bold)
        for word in w.text.split():
            if word.isascii() and measure.get_extents(word)[0] > w.width + 2:
                bad.append(f"{word!r} is wider than its label ({w.width:.0f} px)")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1024x600")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lang", default="zh", choices=("zh", "en"))
    ap.add_argument("--only", default="", help="comma-separated screen names")
    ap.add_argument("--five", action="store_true", help="five keys and seven reasons")
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from terminal import kivy_setup

    kivy_setup.prepare()
    from kivy.config import Config

    Config.set("graphics", "width", str(w))
    Config.set("graphics", "height", str(h))
    Config.set("graphics", "resizable", "0")
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from rating_pad.ui.screens import PadRoot

    EventLoop.ensure_window()
    Window.size = (w, h)
    root = PadRoot(
        on_score=lambda s: None,
        on_reason=lambda i: None,
        keypad=True,
        default_language=args.lang,
        size=(w, h),
        size_hint=(None, None),
    )
    Window.add_widget(root)
    written = []
    only = set(filter(None, args.only.split(",")))
    for name, view in views(args.five):
        if only and name not in only:
            continue
        if view.today is None:  # the clerk's status line, as the service fills it in
            view.today, view.link = 12, view.link or "online"
        root.show(view)
        root.lang = args.lang
        root._refresh()
        for _ in range(4):
            EventLoop.idle()
        suffix = ("" if args.lang == "zh" else "-en") + ("-five" if args.five else "")
        path = out / f"pad-{name}{suffix}-{w}x{h}.png"
        root.export_to_png(str(path))
        written.append(
            {"screen": name, "shown": root.screen, "file": str(path), "overflows": overflows(root)}
        )
    print(json.dumps(written, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
