"""Kiosk building blocks: large focusable buttons, wrapping labels, the QR image, colours, sizes."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from kivy.core.image import Image as CoreImage
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.graphics import Color, Line, Rectangle, RoundedRectangle
from kivy.properties import BooleanProperty, ListProperty
from kivy.uix.button import Button
from kivy.uix.image import Image
from kivy.uix.label import Label

from terminal.fonts import MISSING_HINT, find_cjk_font

log = logging.getLogger("careterm.kiosk.ui")

BG = (0.96, 0.97, 0.98, 1)
INK = (0.08, 0.12, 0.18, 1)
MUTED = (0.32, 0.38, 0.45, 1)
PRIMARY = (0.0, 0.42, 0.62, 1)
PRIMARY_DARK = (0.0, 0.30, 0.46, 1)
SECONDARY = (0.86, 0.90, 0.94, 1)
GOOD = (0.10, 0.52, 0.28, 1)
WARN = (0.80, 0.36, 0.0, 1)
BAD = (0.72, 0.12, 0.12, 1)
FOCUS = (1.0, 0.72, 0.0, 1)
WHITE = (1, 1, 1, 1)


def register_cjk_font() -> str:
    """Make a CJK font Kivy's default for every widget (its own Roboto has no Chinese)."""
    path = find_cjk_font()
    if path:
        LabelBase.register(DEFAULT_FONT, path, path, path, path)
        return path
    log.error(MISSING_HINT)
    return ""


class Sizes:
    """Everything scales with the short side of the window: 1280x800 and 1080x1920 both work."""

    def __init__(self, width: float, height: float) -> None:
        self.w, self.h = width, height
        self.portrait = height > width
        self.u = min(width, height) / 100.0
        self.title = round(self.u * (5.6 if self.portrait else 5.2))
        self.body = round(self.u * (4.2 if self.portrait else 3.9))
        self.small = round(self.u * (3.2 if self.portrait else 3.0))
        self.button = round(self.u * (12 if self.portrait else 10.5))
        self.pad = round(self.u * 2.5)
        self.gap = round(self.u * 1.6)


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
        self.bind(size=lambda *_: setattr(self, "text_size", (self.width - 24, None)))

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


class Panel(WrapLabel):
    """A wrapping label on a tinted card."""

    def __init__(self, text: str = "", tint: tuple = SECONDARY, **kw) -> None:
        super().__init__(text=text, padding=(20, 16), **kw)
        self._tint = tint
        self.bind(pos=self._bg, size=self._bg)

    def _bg(self, *_: object) -> None:
        self.canvas.before.clear()
        with self.canvas.before:
            Color(*self._tint)
            RoundedRectangle(pos=self.pos, size=self.size, radius=[12])


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
    img = Image(texture=tex, size_hint=(None, None), size=(side, side))
    img.qr_data = data
    return img
