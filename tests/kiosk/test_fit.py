"""No text clips or overflows (SPEC 9.6): every reachable screen, with 30-character department,
doctor and room names, at 1080x1920, 1920x1080, 1280x800 and 800x480, in Chinese and English,
with and without care mode, in a real window; any label whose text is larger than its box, or
that lies outside the window, fails the test. Care mode's sizes are checked too. On the done
screens (ticket printed, ticket on screen) every line a patient needs is visible without
scrolling."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tour import make_service, tour

pytestmark = pytest.mark.display

SIZES = [(1080, 1920), (1920, 1080), (1280, 800), (800, 480)]


def overflows(root, window_size) -> list[str]:
    """Labels whose text is larger than their box, and labels outside the area they belong to
    (the screen area between the bars, or the window for the bars themselves)."""
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    W, H = window_size
    m = root.screen_area
    mx, my = m.to_window(m.x, m.y)
    area = (mx, my, mx + m.width, my + m.height)
    bad = []

    def walk(w, in_scroll: bool, box=(0, 0, W, H)) -> None:
        if getattr(w, "opacity", 1) == 0:
            return
        if w is m:
            box = area
        if isinstance(w, Label) and w.text.strip():
            tw, th = w.texture_size
            where = f"{w.__class__.__name__} {w.text[:30]!r}"
            if th > w.height + 2 or tw > w.width + 2:
                bad.append(f"{where}: text {tw:.0f}x{th:.0f} in a {w.width:.0f}x{w.height:.0f} box")
            if not in_scroll:
                x, y = w.to_window(w.x, w.y)
                x0, y0, x1, y1 = box
                if x < x0 - 1 or y < y0 - 1 or x + w.width > x1 + 1 or y + w.height > y1 + 1:
                    bad.append(f"{where}: box outside its area at {x:.0f},{y:.0f}")
        for c in w.children:
            walk(c, in_scroll or isinstance(w, ScrollView), box)

    walk(root, False)
    return bad


DONE_SCREENS = ("done", "ticket")
KEY_LINES = 6
"""Title, queue number, where to go, what to do with the ticket, the home button (+ the QR)."""


def hidden_key_lines(root, window_size) -> list[str]:
    """The done screen's key lines (`key_line`) not wholly visible as the screen appears: outside
    the window or cut by a scroll view around them (so seen only by scrolling)."""
    from kivy.uix.scrollview import ScrollView

    def rect(w) -> tuple[float, float, float, float]:
        x, y = w.to_window(w.x, w.y)
        return x, y, x + w.width, y + w.height

    def inside(a, b) -> bool:
        return a[0] >= b[0] - 1 and a[1] >= b[1] - 1 and a[2] <= b[2] + 1 and a[3] <= b[3] + 1

    keys = []
    stack = [root.screen_area]
    while stack:
        w = stack.pop()
        if getattr(w, "key_line", False):
            keys.append(w)
        stack.extend(w.children)
    W, H = window_size
    bad = []
    if len(keys) < KEY_LINES - 1:
        bad.append(f"only {len(keys)} key lines marked")
    for w in keys:
        where = f"key line {getattr(w, 'text', type(w).__name__)[:30]!r}"
        r = rect(w)
        if w.width < 2 or w.height < 2 or not inside(r, (0, 0, W, H)):
            bad.append(f"{where}: not on screen at {r}")
            continue
        p = w.parent
        while p is not None and p is not root:
            if isinstance(p, ScrollView) and not inside(r, rect(p)):
                bad.append(f"{where}: only visible by scrolling")
                break
            p = p.parent
    return bad


def fractional_fonts(root) -> list[str]:
    """Labels whose font size is not a whole pixel: SDL_ttf draws whole pixels, and Kivy opens
    a font face per distinct size value (~0.5 MB each for a CJK font)."""
    from kivy.uix.label import Label

    out = []

    def walk(w) -> None:
        if isinstance(w, Label) and w.text.strip() and not float(w.font_size).is_integer():
            out.append(f"{w.__class__.__name__} {w.text[:20]!r} at {w.font_size!r} px")
        for c in w.children:
            walk(c)

    walk(root)
    return out


def small_targets(root) -> list[str]:
    from kiosk.ui.widgets import FocusButton

    out = []

    def walk(w) -> None:
        if isinstance(w, FocusButton) and w.opacity and (w.width < 60 or w.height < 60):
            out.append(f"{w.text[:20]!r} {w.width:.0f}x{w.height:.0f}")
        for c in w.children:
            walk(c)

    walk(root)
    return out


def test_care_mode_sizes_meet_the_elderly_figures():
    from kiosk.ui.widgets import (
        BAD,
        BAD_TINT,
        GOOD_INK,
        GOOD_TINT,
        WARN,
        WHITE,
        Sizes,
        contrast,
    )

    normal, care = Sizes(1080, 1920), Sizes(1080, 1920, care=True)
    assert care.body >= 48 and care.body >= normal.body * 1.5 - 1
    assert care.title >= normal.title * 1.5 - 1 and care.button >= 60
    assert contrast(WHITE, WARN) >= 4.5
    assert contrast(GOOD_INK, GOOD_TINT) >= 4.5 and contrast(BAD, BAD_TINT) >= 4.5


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_label_is_larger_than_its_box_on_any_screen(size, tmp_path: Path, window_ui):
    svc = make_service(tmp_path / "data", long_names=True)
    try:
        ui = window_ui(svc, size)
        problems: list[str] = []
        for care in (False, True):
            svc.set_care(care)
            ui.pump_until(lambda c=care: ui.root.view.care is c, what="care mode")
            for lang in ("zh", "en"):

                def visit(name: str, lang=lang, care=care) -> None:
                    ui.pump_for(0.12)  # fitted texts settle after layout
                    where = f"{size[0]}x{size[1]} {lang}{' care' if care else ''} {name}"
                    problems.extend(f"{where}: {p}" for p in overflows(ui.root, size))
                    problems.extend(f"{where}: {p}" for p in fractional_fonts(ui.root))
                    if name in DONE_SCREENS:
                        problems.extend(f"{where}: {p}" for p in hidden_key_lines(ui.root, size))
                    if care:
                        problems.extend(
                            f"{where}: small target {p}" for p in small_targets(ui.root)
                        )

                tour(svc, ui, visit, lang)
                if care:
                    svc.set_care(True)
                    ui.pump_until(lambda: ui.root.view.care, what="care mode again")
        import collections

        kinds = collections.Counter(p.split(": ", 1)[1] for p in problems)
        assert not problems, "\n".join(
            f"{n}x {k} (e.g. {next(p for p in problems if p.endswith(k)).split(': ')[0]})"
            for k, n in kinds.most_common(30)
        )
    finally:
        svc.stop()
