"""Kiosk building blocks: large focusable buttons, wrapping labels, the QR image, colours, sizes."""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Callable

from kivy.core.image import Image as CoreImage
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.graphics import Color, Line, Rectangle, RoundedRectangle
from kivy.properties import BooleanProperty, ListProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView

from terminal.fonts import MISSING_HINT, find_cjk_font

log = logging.getLogger("careterm.kiosk.ui")

BG = (0.96, 0.97, 0.98, 1)
INK = (0.08, 0.12, 0.18, 1)
MUTED = (0.32, 0.38, 0.45, 1)
PRIMARY = (0.0, 0.42, 0.62, 1)
PRIMARY_DARK = (0.0, 0.30, 0.46, 1)
SECONDARY = (0.86, 0.90, 0.94, 1)
GOOD = (0.08, 0.48, 0.26, 1)  # white on it 5.4:1, on the page 5.0:1
GOOD_INK, GOOD_TINT = (0.05, 0.38, 0.18, 1), (0.85, 0.93, 0.87, 1)  # 6.2:1
BAD_TINT = (0.98, 0.88, 0.88, 1)  # BAD on it: 5.2:1
WARN = (0.70, 0.30, 0.0, 1)  # white on it: 5.3:1
BAD = (0.72, 0.12, 0.12, 1)
FOCUS = (1.0, 0.72, 0.0, 1)
WHITE = (1, 1, 1, 1)


def luminance(c: tuple) -> float:
    def lin(x: float) -> float:
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])


def contrast(a: tuple, b: tuple) -> float:
    """WCAG contrast ratio of two colours (care mode needs at least 4.5:1)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def register_cjk_font() -> str:
    """Make a CJK font Kivy's default for every widget (its own Roboto has no Chinese)."""
    path = find_cjk_font()
    if path:
        LabelBase.register(DEFAULT_FONT, path, path, path, path)
        return path
    log.error(MISSING_HINT)
    return ""


CARE_SCALE = 1.5
"""Care mode (关怀模式): text at least 1.5x (SPEC 9.6; body 68 px at 1080x1920)."""
MIN_TARGET_DP = 60
"""Touch targets at least 60x60 dp (MIIT 适老化)."""


class Sizes:
    """Everything scales with the short side of the window (800x480 up to 1080x1920); care
    mode multiplies text by CARE_SCALE and makes targets larger."""

    def __init__(self, width: float, height: float, care: bool = False) -> None:
        self.w, self.h = width, height
        self.care = care
        self.portrait = height > width
        self.u = min(width, height) / 100.0
        k = CARE_SCALE if care else 1.0
        self.title = round(self.u * (5.6 if self.portrait else 5.2) * k)
        self.body = round(self.u * (4.2 if self.portrait else 3.9) * k)
        self.small = round(self.u * (3.2 if self.portrait else 3.0) * (1.4 if care else 1.0))
        self.button = max(
            round(self.u * (12 if self.portrait else 10.5) * (1.3 if care else 1)), 60
        )
        self.pad = round(self.u * 2.5)
        self.gap = round(self.u * 1.6)
        self.floor = max(14, round(self.body * 0.55))
        """Smallest font a fitted text may shrink to."""


class FocusButton(Button):
    """A large flat button; `focused` draws a thick amber frame so keypad users see where they are."""

    focused = BooleanProperty(False)
    base_color = ListProperty(PRIMARY)

    def __init__(
        self,
        text: str = "",
        on_choose: Callable[[], None] | None = None,
        color_bg: tuple = PRIMARY,
        fg: tuple = WHITE,
        **kw,
    ) -> None:
        kw.setdefault("halign", "center")
        kw.setdefault("valign", "middle")
        super().__init__(
            text=text,
            background_normal="",
            background_down="",
            background_color=(0, 0, 0, 0),
            color=fg,
            **kw,
        )
        self.base_color = list(color_bg)
        self.on_choose = on_choose
        self.bind(size=self._layout, pos=self._layout, focused=self._layout, state=self._layout)
        self.bind(size=lambda *_: setattr(self, "text_size", (max(1, self.width - 24), None)))

    def _layout(self, *_: object) -> None:
        self.canvas.before.clear()
        with self.canvas.before:
            c = self.base_color
            if self.state == "down":
                Color(c[0] * 0.75, c[1] * 0.75, c[2] * 0.75, 1)
            else:
                Color(*c)
            RoundedRectangle(pos=self.pos, size=self.size, radius=[12])
        self.canvas.after.clear()
        if self.focused:
            with self.canvas.after:
                Color(*FOCUS)
                Line(
                    rounded_rectangle=(self.x + 3, self.y + 3, self.width - 6, self.height - 6, 12),
                    width=5,
                )

    def on_release(self) -> None:
        if self.on_choose is not None:
            self.on_choose()


def whole_px(size: float) -> int:
    """A font size in whole pixels, as SDL_ttf draws it (it truncates). Kivy opens a font face
    per distinct `font_size` value (its cache key is the number's text, up to 64 faces of ~0.5 MB
    each for a CJK font): 27.9 and 27.900000000000002 were two faces drawing the same 27 px."""
    return int(size)


def shrunk(size: float, factor: float) -> int:
    """One step down when fitting a text: whole pixels, at least one less."""
    return min(int(size) - 1, whole_px(size * factor))


WORD = re.compile(r"[0-9A-Za-z][0-9A-Za-z'’.,:;!?()/-]*")
"""A run of Latin letters and digits: Kivy breaks one wider than the line anywhere."""


def fits(text: str, font_size: float, box: tuple[float, float], bold: bool = False) -> bool:
    """Whether `text` wrapped to the box's width fits in its height and width, every English
    word (or number) whole on its line: care mode's "Delete" and "Submit" keys read
    "Delet / e" and "Sub / mit" at 1280x800 before (Chinese may wrap between any characters)."""
    w, h = box
    if w <= 0 or h <= 0:
        return False
    size = round(font_size, 2)
    tw, th = _wrapped_size(text, size, round(w, 1), bold)
    if th > h or tw > w + 1:
        return False
    return all(_wrapped_size(word, size, 0.0, bold)[0] <= w + 1 for word in WORD.findall(text))


@functools.lru_cache(maxsize=1024)
def _wrapped_size(text: str, font_size: float, width: float, bold: bool) -> tuple[int, int]:
    """The size of `text` drawn wrapped to `width` (0: on one line) (the same buttons are fitted
    at every visit of a screen and at every layout pass: measured once, not each time)."""
    from kivy.core.text import Label as CoreLabel

    lbl = CoreLabel(text=text, font_size=font_size, bold=bold, text_size=(width or None, None))
    lbl.refresh()
    return tuple(lbl.texture.size) if lbl.texture else (0, 0)  # type: ignore[return-value]


class FitButton(FocusButton):
    """A button of a fixed size whose text wraps and, if it still does not fit, shrinks down to
    a floor: never clipped (the overflow test proves it for every screen)."""

    def __init__(self, text: str = "", on_choose=None, floor: float = 14, **kw) -> None:
        self._base_font = kw.get("font_size", 24)
        self._floor = floor
        super().__init__(text, on_choose, **kw)
        self.bind(size=self._fit, text=self._fit)

    def _fit(self, *_: object) -> None:
        box = (self.width - 24, self.height - 12)
        size = self._base_font
        while size > self._floor and not fits(self.text, size, box, self.bold):
            size = max(whole_px(self._floor), shrunk(size, 0.9))
        self.font_size = size


class FitLabel(Label):
    """A one-box label (the title bar) whose text wraps and shrinks to a floor to fit."""

    def __init__(self, text: str = "", floor: float = 14, **kw) -> None:
        kw.setdefault("valign", "middle")
        self._base_font = kw.get("font_size", 24)
        self._floor = floor
        super().__init__(text=text, **kw)
        self.bind(size=self._fit, text=self._fit)

    def _fit(self, *_: object) -> None:
        self.text_size = (max(1, self.width), None)
        size = self._base_font
        while size > self._floor and not fits(
            self.text, size, (self.width, self.height), self.bold
        ):
            size = max(whole_px(self._floor), shrunk(size, 0.9))
        self.font_size = size


class AutoButton(FocusButton):
    """A full-width button that grows to its wrapped text (lists: appointments, departments)."""

    def __init__(self, text: str = "", on_choose=None, min_height: float = 60, **kw) -> None:
        kw.setdefault("size_hint_y", None)
        super().__init__(text, on_choose, **kw)
        self._min_h = min_height
        self.height = min_height
        self.bind(texture_size=self._grow)

    def _grow(self, *_: object) -> None:
        self.height = max(self._min_h, self.texture_size[1] + 28)


class WrapLabel(Label):
    """A label that wraps to its width and grows to its text's height."""

    def __init__(self, text: str = "", **kw) -> None:
        kw.setdefault("color", INK)
        kw.setdefault("halign", "left")
        kw.setdefault("valign", "middle")
        kw.setdefault("size_hint_y", None)
        super().__init__(text=text, **kw)
        self.bind(
            width=lambda *_: setattr(self, "text_size", (self.width, None)),
            texture_size=lambda *_: setattr(self, "height", self.texture_size[1]),
        )
        if not text and "height" not in kw:
            # No texture yet, so no texture_size event: without this an empty line (the
            # "back to the start in N s" of a screen that has no countdown) kept Kivy's default
            # 100 px, a third of an 800x480 screen's area, and squeezed the message above it.
            self.height = 0


class Panel(WrapLabel):
    """A wrapping label on a tinted card."""

    def __init__(self, text: str = "", tint: tuple = SECONDARY, **kw) -> None:
        kw.setdefault("padding", (20, 16))
        super().__init__(text=text, **kw)
        self._tint = tint
        self.bind(pos=self._bg, size=self._bg)

    def _bg(self, *_: object) -> None:
        self.canvas.before.clear()
        with self.canvas.before:
            Color(*self._tint)
            RoundedRectangle(pos=self.pos, size=self.size, radius=[12])


class SteadyScrollView(ScrollView):
    """A ScrollView whose bar keeps one colour (MUTED, 12 px): drawn only when there is more to
    scroll to, and then it stays in sight for a patient who does not know to look for it.

    Kivy's own fades its bar half a second after every layout, even when there is nothing to
    scroll: an animation that has the whole window redrawn at the frame rate for another half
    second after each screen change (~30 frames, on a Pi-class kiosk the CPU of a patient's next
    card read). `_bind_inactive_bar_color` is where Kivy starts that fade (kivy.uix.scrollview);
    tests/kiosk/test_ui.py counts the frames a screen change costs."""

    BAR = 12

    def __init__(self, **kw: object) -> None:
        kw.setdefault("bar_width", self.BAR)
        kw.setdefault("bar_color", MUTED)
        kw.setdefault("scroll_type", ["bars", "content"])
        super().__init__(**kw)

    def _bind_inactive_bar_color(self, *_: object) -> None:
        """The bar stays as it is (no fade to `bar_inactive_color`)."""


class FitStack(SteadyScrollView):
    """Lines stacked in the height a screen gives them, all visible at once: when they do not fit
    at their own sizes their fonts shrink together (to `min_scale`, never under `floor` px). Key
    lines (added first) shrink further, to MIN_FONT, rather than be scrolled out of sight; only
    the other lines may then need scrolling (never clipped). Centred vertically when there is
    room."""

    MIN_FONT = 14

    def __init__(self, spacing: float = 0, min_scale: float = 0.5, floor: float = 14, **kw):
        kw.setdefault("do_scroll_x", False)
        super().__init__(**kw)
        self.box = BoxLayout(orientation="vertical", spacing=spacing, size_hint_y=None)
        super().add_widget(self.box)
        self.min_scale, self.floor = min_scale, floor
        self.scale = 1.0
        self._lines: list[tuple[Label, float, bool]] = []
        self.bind(size=self._fit)

    def add_line(self, label: Label, key: bool = False) -> Label:
        """Add a label (a WrapLabel or Panel) at its own font size; key lines come first."""
        if key and any(not k for _, _, k in self._lines):
            raise ValueError("key lines come before the others")
        label.size_hint_y = None
        self._lines.append((label, label.font_size, key))
        self.box.add_widget(label)
        return label

    def _heights(self, scale: float, floor: float, width: float) -> tuple[float, float]:
        """Total height and the height down to the last key line, at this scale."""
        gap = self.box.spacing
        total = keys = -gap
        for lbl, base, key in self._lines:
            lbl.font_size = whole_px(max(floor, base * scale))
            lbl.text_size = (max(1, width), None)  # as WrapLabel does (padding inside)
            lbl.texture_update()
            lbl.height = lbl.texture_size[1]
            total += lbl.height + gap
            if key:
                keys = total
        return max(0.0, total), max(0.0, keys)

    def _fit(self, *_: object) -> None:
        if not self._lines or self.width <= 1 or self.height <= 1:
            return
        width = self.width - 2 * self.BAR  # clear of the bar, and centred
        scale, floor = 1.0, self.floor
        total, keys = self._heights(scale, floor, width)
        while total > self.height and scale > self.min_scale:
            scale = max(self.min_scale, scale * 0.92)
            total, keys = self._heights(scale, floor, width)
        floor = min(floor, self.MIN_FONT)
        while keys > self.height and max(b * scale for _, b, _ in self._lines) > floor:
            scale *= 0.92
            total, keys = self._heights(scale, floor, width)
        self.scale = scale
        room = max(0.0, self.height - total)
        self.box.padding = [self.BAR, room / 2, self.BAR, room / 2]
        self.box.height = total + room
        self.scroll_y = 1


def paint_background(widget, color: tuple = BG) -> None:
    with widget.canvas.before:
        Color(*color)
        rect = Rectangle(pos=widget.pos, size=widget.size)
    widget.bind(
        pos=lambda *_: setattr(rect, "pos", widget.pos),
        size=lambda *_: setattr(rect, "size", widget.size),
    )


def qr_image(data: str, side: float) -> Image:
    """The QR code as a crisp on-screen image (the ticket the printer could not print)."""
    import qrcode

    qr = qrcode.QRCode(border=2, box_size=8)
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    buf.seek(0)
    tex = CoreImage(buf, ext="png").texture
    tex.mag_filter = "nearest"
    tex.min_filter = "nearest"
    img = Image(texture=tex, size_hint=(None, None), size=(side, side), fit_mode="contain")
    img.qr_data = data
    return img
