"""Kivy widgets that draw one `PadView`: header, clerk card, rating faces, reasons, messages.

The root puts a screen together when it changes (state, clerk, fault, language, size) and
only updates the countdown otherwise. Bodies and headers once built are kept (a few dozen at
most, dropped when the size changes) and put back on the next visit: building labels and
measuring text is the costly part of a frame, and while the Kivy thread builds, the thread that
publishes the rating waits for the interpreter (bench/pi_budget.py). Sizes follow `u`, the
window's scale against 1024x600, so the same layout serves 1024x600, 800x480 and a 480x320
panel.
"""

from __future__ import annotations

import base64
import io
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kivy.core.image import Image as CoreImage
from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Ellipse, Line, RoundedRectangle
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from rating_pad.machine import PadState, PadView, Staff, next_patient
from rating_pad.texts import text
from rating_pad.ui.fonts import FONT

log = logging.getLogger("careterm.pad.ui")

BG = (0.04, 0.10, 0.22, 1)
HEADER_BG = (0.01, 0.05, 0.13, 1)
CARD_BG = (0.09, 0.18, 0.34, 1)
FG = (1, 1, 1, 1)
MUTED = (0.80, 0.87, 0.97, 1)
ACCENT = (1.0, 0.80, 0.25, 1)
FAULT_BG = (0.55, 0.05, 0.05, 1)
PAUSE_BG = (0.20, 0.22, 0.26, 1)
FONT_FLOOR = 0.64
KEPT_SCREENS = 32
"""Bodies kept for reuse (states x scores x languages x clerks seen since the last resize)."""

_RED, _ORANGE, _AMBER = (0.78, 0.16, 0.16, 1), (0.84, 0.33, 0.0, 1), (0.66, 0.47, 0.0, 1)
_LGREEN, _GREEN = (0.30, 0.52, 0.16, 1), (0.08, 0.42, 0.20, 1)
STATUS_BG = (0.01, 0.05, 0.13, 1)


def key_colours(moods: list[float]) -> list[tuple[float, ...]]:
    """One colour per rating key, worst first: red for the worst key, green for the best, and
    between them by the face (a neutral 基本满意 is amber, not an angry orange)."""
    out = []
    for i, mood in enumerate(moods):
        if i == 0:
            out.append(_RED)
        elif i == len(moods) - 1:
            out.append(_GREEN)
        else:
            out.append(_ORANGE if mood < -0.3 else _AMBER if mood < 0.3 else _LGREEN)
    return out


def _paint(widget: Widget, color: tuple[float, ...], radius: float = 0) -> None:
    """A background rectangle that follows the widget."""
    with widget.canvas.before:
        Color(*color)
        rect = RoundedRectangle(pos=widget.pos, size=widget.size, radius=[radius])

    def follow(*_: Any) -> None:
        rect.pos, rect.size = widget.pos, widget.size

    widget.bind(pos=follow, size=follow)


def label(
    txt: str,
    size: float,
    *,
    bold: bool = False,
    color: tuple[float, ...] = FG,
    halign: str = "center",
    shorten: bool = False,
    **kw: Any,
) -> Label:
    """A wrapping label in the CJK font."""
    lb = Label(
        text=txt,
        font_name=FONT,
        font_size=size,
        bold=bold,
        color=color,
        halign=halign,
        valign="middle",
        shorten=shorten,
        shorten_from="right",
        **kw,
    )
    lb.bind(size=lambda w, s: setattr(w, "text_size", (s[0], s[1])))
    return lb


def fit(txt: str, size: float, width: float) -> float:
    """`size`, shrunk so that one line of `txt` fits `width` (measured in the CJK font):
    headings stay on one line and no word is broken instead of spilling into the next widget."""
    if not txt or width <= 0:
        return size
    measured, _h = CoreLabel(font_name=FONT, font_size=size, bold=True).get_extents(txt)
    return size if measured <= width else max(8.0, size * width / measured)


def fit_box(txt: str, size: float, width: float, height: float, bold: bool = True) -> float:
    """`size`, shrunk until `txt` wrapped at `width` (by Kivy's own layout) is at most `height`
    tall and no word is wider than `width`."""
    size = min(size, *(fit(word, size, width * 0.95) for word in txt.split()))
    while size > 8:
        lb = CoreLabel(text=txt, font_name=FONT, font_size=size, bold=bold, text_size=(width, None))
        lb.refresh()
        if lb.texture is None or lb.texture.height <= height:
            break
        size *= 0.92
    return size


CJK_BREAK_AFTER = " ,，、;；/:：)）"
TWO_LINES_GAIN = 1.15
"""A CJK reason is set on two lines when that makes its text at least this much larger."""


def two_lines(cap: str) -> str:
    """A CJK caption of six or more characters as two balanced lines (Kivy wraps only at
    spaces, so a long reason would otherwise shrink to fit one line of a small key): broken
    after a space or punctuation near the middle, else at the middle."""
    if cap.isascii() or "\n" in cap or len(cap) < 6:
        return cap
    mid = (len(cap) + 1) // 2
    cut = next(
        (
            k
            for d in range(3)
            for k in (mid + d, mid - d)
            if 0 < k < len(cap) and cap[k - 1] in CJK_BREAK_AFTER
        ),
        mid,
    )
    return cap[:cut].rstrip() + "\n" + cap[cut:].lstrip()


class Face(Widget):
    """A line-drawn face: mood -1 (frown) .. 1 (smile)."""

    def __init__(self, mood: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.mood = mood
        self.bind(pos=self._draw, size=self._draw)

    def _draw(self, *_: Any) -> None:
        self.canvas.clear()
        r = min(self.width, self.height) / 2 * 0.9
        if r <= 2:
            return
        cx, cy = self.center
        w = max(1.5, r * 0.09)
        with self.canvas:
            Color(1, 1, 1, 1)
            Line(circle=(cx, cy, r), width=w)
            e = r * 0.13
            for dx in (-0.36, 0.36):
                Ellipse(pos=(cx + dx * r - e / 2, cy + 0.25 * r - e / 2), size=(e, e))
            m = self.mood
            if abs(m) < 0.2:
                Line(points=[cx - 0.4 * r, cy - 0.35 * r, cx + 0.4 * r, cy - 0.35 * r], width=w)
            elif m > 0:
                span = 40 + 35 * m
                Line(circle=(cx, cy, 0.55 * r, 180 - span, 180 + span), width=w)
            else:
                span = 40 + 35 * -m
                Line(circle=(cx, cy - 0.85 * r, 0.45 * r, -span, span), width=w)


class RateButton(ButtonBehavior, BoxLayout):
    """One big rating key: a face over its label, in the score's colour."""

    def __init__(
        self,
        score: int,
        caption: str,
        mood: float,
        color: tuple[float, ...],
        u: float,
        font: float,
        face_share: float = 0.62,
        **kw: Any,
    ) -> None:
        super().__init__(orientation="vertical", padding=6 * u, spacing=4 * u, **kw)
        self.score = score
        self.caption = caption
        with self.canvas.before:
            self._color = Color(*color)
            self._bg = RoundedRectangle(pos=self.pos, size=self.size, radius=[18 * u])
        self._base = color
        self.bind(pos=self._follow, size=self._follow, state=self._pressed)
        self.add_widget(Face(mood, size_hint=(1, face_share)))
        self.add_widget(label(caption, font, bold=True, size_hint=(1, 1 - face_share)))

    def _follow(self, *_: Any) -> None:
        self._bg.pos, self._bg.size = self.pos, self.size

    def _pressed(self, _w: Any, state: str) -> None:
        f = 0.7 if state == "down" else 1.0
        self._color.rgba = (self._base[0] * f, self._base[1] * f, self._base[2] * f, 1)


class ReasonButton(ButtonBehavior, BoxLayout):
    """A reason on a pad with a keypad: in the colour of the rating key that picks it (SPEC 5:
    the key of score N picks reason N), placed as that key is, and naming it."""

    def __init__(
        self,
        index: int,
        caption: str,
        key_hint: str,
        color: tuple[float, ...],
        u: float,
        font: float,
        hint_font: float,
        shown: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(orientation="vertical", padding=8 * u, spacing=4 * u, **kw)
        self.reason_index = index
        self.caption = caption
        _paint(self, color, 18 * u)
        self.add_widget(label(key_hint, hint_font, color=MUTED, size_hint=(1, 0.3)))
        self.add_widget(label(shown or caption, font, bold=True, size_hint=(1, 0.7)))


class PlainReason(ButtonBehavior, Label):
    """A reason only a touch can pick (no key for it, or no keypad)."""

    def __init__(
        self, index: int, caption: str, font: float, shown: str | None = None, **kw: Any
    ) -> None:
        super().__init__(
            text=shown or caption,
            font_name=FONT,
            font_size=font,
            bold=True,
            color=FG,
            halign="center",
            valign="middle",
            **kw,
        )
        self.reason_index = index
        self.caption = caption
        _paint(self, CARD_BG, 12)
        self.bind(size=lambda w, sz: setattr(w, "text_size", (sz[0] - 10, sz[1])))


def photo_texture(staff: Staff, cache: dict[Any, Any]) -> Any:
    """The clerk's photo (base64 JPEG) as a texture, or None; decoded once per photo."""
    if not staff.photo:
        return None
    key = (staff.staff, len(staff.photo), staff.photo[:64])
    if key not in cache:
        try:
            raw = base64.b64decode(staff.photo, validate=False)
            cache[key] = CoreImage(io.BytesIO(raw), ext="jpg").texture
        except Exception as e:  # binascii.Error, or any image error: show the initial
            log.warning("pad ui: photo of %s cannot be shown: %s", staff.staff, e)
            cache[key] = None
    return cache[key]


class Avatar(Widget):
    """The clerk's photo, or a circle with the first character of the name."""

    def __init__(self, staff: Staff | None, cache: dict[Any, Any], u: float, **kw: Any) -> None:
        super().__init__(**kw)
        self._tex = photo_texture(staff, cache) if staff else None
        if self._tex is None:
            first = (staff.name[:1] if staff and staff.name else "") or "?"
            self._initial = label(first, 60 * u, bold=True)
            self.add_widget(self._initial)
        else:
            self._img = Image(texture=self._tex, fit_mode="contain")
            self.add_widget(self._img)
        self.bind(pos=self._layout, size=self._layout)

    def _layout(self, *_: Any) -> None:
        w = h = min(self.width, self.height)
        if self._tex is not None and self._tex.height:
            aspect = self._tex.width / self._tex.height  # portraits keep their shape
            w, h = min(self.width, self.height * aspect), min(self.height, self.width / aspect)
        x, y = self.center_x - w / 2, self.center_y - h / 2
        child = self.children[0]
        child.pos, child.size = (x, y), (w, h)
        self.canvas.before.clear()
        if self._tex is None:
            with self.canvas.before:
                Color(0.20, 0.38, 0.62, 1)
                Ellipse(pos=(x, y), size=(w, h))
        else:
            with self.canvas.before:
                Color(1, 1, 1, 1)
                Line(rectangle=(x - 3, y - 3, w + 6, h + 6), width=2)


@dataclass
class _Built:
    """A body as built, with the widgets the root updates or hands to tests."""

    screen: str
    body: Widget
    countdown: Label | None
    countdown_prefix: str
    rate_buttons: list[Any]
    reason_buttons: list[Any]


class PadRoot(BoxLayout):
    """The whole pad screen. `show(view)` on the Kivy thread; touches go to the callbacks."""

    def __init__(
        self,
        *,
        on_score: Callable[[int], None],
        on_reason: Callable[[int], None],
        keypad: bool,
        default_language: str = "zh",
        on_language: Callable[[str], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(orientation="vertical", **kw)
        self.on_language = on_language
        self.on_score = on_score
        self.on_reason = on_reason
        self.keypad = keypad
        self.default_language = default_language
        self.lang = default_language
        self.view: PadView | None = None
        self.screen = ""
        self._photos: dict[Any, Any] = {}
        self._key: Any = None
        self._countdown: Label | None = None
        self._countdown_prefix = ""
        self.rate_buttons: list[RateButton] = []
        self.reason_buttons: list[Any] = []
        self.status_line: Label | None = None
        self.lang_button: Button | None = None
        self._bodies: OrderedDict[tuple[Any, ...], _Built] = OrderedDict()
        self._headers: dict[tuple[Any, ...], tuple[BoxLayout, Button]] = {}
        self._built_size: tuple[float, float] = (0, 0)
        _paint(self, BG)
        self.bind(size=lambda *_: self._rebuild())

    # -- inputs -----------------------------------------------------------------------------

    def show(self, view: PadView) -> None:
        before = self.view
        self.view = view
        if before is not None and next_patient(before, view):
            self.lang = self.default_language  # the next patient starts in the default language
        self._refresh()

    def toggle_language(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        if self.on_language is not None:
            self.on_language(self.lang)  # the voice follows the patient's language
        self._refresh()

    # -- drawing ----------------------------------------------------------------------------

    @property
    def f(self) -> float:
        """Font scale: as `u`, but small panels keep text readable."""
        return max(self.u, FONT_FLOOR)

    @property
    def u(self) -> float:
        return max(0.3, min(self.width / 1024, self.height / 600))

    def _refresh(self) -> None:
        v = self.view
        if v is None:
            return
        st = v.staff
        key = (
            v.state,
            v.fault,
            v.score,
            v.buttons,
            v.notice,
            v.today,
            v.link,
            v.waiting,
            self.lang,
            tuple(self.size),
            (st.staff, st.name, st.title, len(st.photo or "")) if st else None,
        )
        if key != self._key:
            self._key = key
            self._rebuild()
        elif self._countdown is not None:
            self._countdown.text = self._countdown_prefix + self._seconds(v)

    def _rebuild(self) -> None:
        v = self.view
        self.clear_widgets()
        self._countdown, self._countdown_prefix = None, ""
        self.rate_buttons, self.reason_buttons = [], []
        self.status_line = None
        if v is None or self.width < 10:
            return
        if tuple(self.size) != self._built_size:  # another panel size: nothing kept fits it
            self._built_size = (self.width, self.height)
            self._bodies.clear()
            self._headers.clear()
        self.add_widget(self._header_for(v))
        built = self._body_for(v)
        self.screen = built.screen
        self._countdown, self._countdown_prefix = built.countdown, built.countdown_prefix
        if built.countdown is not None:
            built.countdown.text = built.countdown_prefix + self._seconds(v)
        self.rate_buttons, self.reason_buttons = built.rate_buttons, built.reason_buttons
        self.add_widget(built.body)
        if v.notice:
            bar = label(
                text(self.lang, v.notice),
                28 * self.f,
                bold=True,
                size_hint=(1, None),
                height=self._notice_h(),
            )
            _paint(bar, (0.75, 0.45, 0.0, 1))
            self.add_widget(bar)
        if v.today is not None:
            self.add_widget(self._status(v))

    def _body_for(self, v: PadView) -> _Built:
        """The body for `v`: the one built before for the same screen, or a new one."""
        st = v.staff
        key = (
            v.state,
            v.fault,
            v.score,
            v.buttons,
            self.lang,
            (st.staff, st.name, st.title, st.photo) if st else None,
            bool(v.notice),  # the banners take height from the body
            v.today is not None,
            v.window_id,
            v.window_name,
            tuple(v.labels),
            tuple(v.labels_en),
            tuple(v.reasons),
            tuple(v.reasons_en),
            tuple(v.moods),
        )
        built = self._bodies.get(key)
        if built is not None:
            self._bodies.move_to_end(key)
            return built
        built = self._build_body(v)
        self._bodies[key] = built
        while len(self._bodies) > KEPT_SCREENS:
            self._bodies.popitem(last=False)
        return built

    def _build_body(self, v: PadView) -> _Built:
        if v.fault:
            screen = "fault"
            body = self._message(text(self.lang, "fault"), text(self.lang, "fault_sub"), FAULT_BG)
        elif v.state == PadState.CLOSED:
            screen = "closed"
            body = self._message(text(self.lang, "closed"), text(self.lang, "closed_sub"), PAUSE_BG)
        elif v.state == PadState.PAUSED:
            screen = "paused"
            body = self._message(
                text(self.lang, "paused"), text(self.lang, "paused_sub"), PAUSE_BG, staff=v.staff
            )
        elif v.state == PadState.REASON:
            screen = "reason"
            body = self._reasons(v)
        elif v.state == PadState.THANKS and not v.buttons:
            screen = "thanks"
            body = self._thanks(v)
        elif v.buttons:
            screen = (
                "prompt"
                if v.state == PadState.PROMPTED
                else ("thanks" if v.state == PadState.THANKS else "idle-free")
            )
            body = self._prompt(v)
        else:
            screen = "idle"
            body = self._idle(v)
        built = _Built(
            screen,
            body,
            self._countdown,
            self._countdown_prefix,
            self.rate_buttons,
            self.reason_buttons,
        )
        self._countdown, self._countdown_prefix = None, ""
        self.rate_buttons, self.reason_buttons = [], []
        return built

    def _status(self, v: PadView) -> Label:
        """The clerk's line at the bottom: today's count and whether the link is up."""
        if v.link == "offline":
            key = "status_offline" if v.waiting else "status_offline_none"
        else:
            key = "status_online"
        line = label(
            text(self.lang, key, n=v.today, w=v.waiting),
            max(11, 18 * self.f),
            color=ACCENT if v.link == "offline" else MUTED,
            halign="right",
            shorten=True,
            size_hint=(1, None),
            height=self._status_h(),
            padding=(12 * self.u, 0),
        )
        _paint(line, STATUS_BG)
        self.status_line = line
        return line

    def _body_h(self, v: PadView) -> float:
        """The height left for a screen's body under the header and above the banners."""
        return (
            self.height
            - self._header_h()
            - (self._notice_h() if v.notice else 0)
            - (self._status_h() if v.today is not None else 0)
        )

    def _header_h(self) -> float:
        return max(36, 64 * self.u)

    def _notice_h(self) -> float:
        return max(34, 60 * self.u)

    def _status_h(self) -> float:
        return max(18, 30 * self.u)

    def _header_for(self, v: PadView) -> BoxLayout:
        key = (self.lang, v.window_id, v.window_name)
        if key not in self._headers:
            bar = self._header(v)
            assert self.lang_button is not None
            self._headers[key] = (bar, self.lang_button)
        bar, self.lang_button = self._headers[key]
        return bar

    def _header(self, v: PadView) -> BoxLayout:
        u, f = self.u, self.f
        bar = BoxLayout(
            size_hint=(1, None), height=self._header_h(), padding=(16 * u, 6 * u), spacing=10 * u
        )
        _paint(bar, HEADER_BG)
        bar.add_widget(
            label(
                v.window_name or v.window_id,
                30 * f,
                bold=True,
                halign="left",
                shorten=True,
                size_hint=(0.7, 1),
            )
        )
        btn = Button(
            text=text(self.lang, "lang"),
            font_name=FONT,
            font_size=max(16, 24 * f),
            size_hint=(0.3, 1),
            background_normal="",
            background_color=CARD_BG,
            color=FG,
        )
        btn.bind(on_press=lambda *_: self.toggle_language())
        self.lang_button = btn
        bar.add_widget(btn)
        return bar

    def _clerk_lines(self, st: Staff | None, size: float, halign: str) -> BoxLayout:
        box = BoxLayout(orientation="vertical")
        if st is None:
            box.add_widget(label(text(self.lang, "welcome"), size * 1.2, bold=True, halign=halign))
            return box
        box.add_widget(
            label(st.name or st.staff, size * 1.5, bold=True, halign=halign, shorten=True)
        )
        box.add_widget(
            label(
                f"{text(self.lang, 'staff_no')} {st.staff}",
                size,
                color=ACCENT,
                halign=halign,
                shorten=True,
            )
        )
        if st.title:
            box.add_widget(label(st.title, size, color=MUTED, halign=halign, shorten=True))
        return box

    def _idle(self, v: PadView) -> BoxLayout:
        u, f = self.u, self.f
        body = BoxLayout(orientation="vertical", padding=24 * u, spacing=12 * u)
        card = BoxLayout(spacing=28 * u, padding=20 * u, size_hint=(1, 0.78))
        _paint(card, CARD_BG, 20 * u)
        if v.staff is None:  # an open window nobody signed in to: its name, large
            name = v.window_name or v.window_id
            card.add_widget(label(name, fit(name, 72 * f, self.width * 0.8), bold=True))
        else:
            card.add_widget(Avatar(v.staff, self._photos, u * 1.6, size_hint=(0.4, 1)))
            card.add_widget(self._clerk_lines(v.staff, 40 * f, "left"))
        body.add_widget(card)
        body.add_widget(label(text(self.lang, "welcome"), 34 * f, color=MUTED, size_hint=(1, 0.22)))
        return body

    def _strip(self, v: PadView) -> BoxLayout:
        """The clerk, small, above the rating keys."""
        u, f = self.u, self.f
        strip = BoxLayout(size_hint=(1, 0.2), spacing=14 * u, padding=(10 * u, 4 * u))
        st = v.staff
        if st is not None:
            strip.add_widget(Avatar(st, self._photos, u * 0.6, size_hint=(0.14, 1)))
        line = (
            f"{st.name or ''}  {text(self.lang, 'staff_no')} {st.staff}  {st.title}".strip()
            if st
            else text(self.lang, "welcome")
        )
        strip.add_widget(
            label(line, 26 * f, color=MUTED, halign="left", shorten=True, size_hint=(0.86, 1))
        )
        return strip

    def _prompt(self, v: PadView) -> BoxLayout:
        u, f = self.u, self.f
        body = BoxLayout(orientation="vertical", padding=(18 * u, 8 * u), spacing=8 * u)
        body.add_widget(self._strip(v))
        ask = "ask" if v.state == PadState.PROMPTED else "ask_free"
        if v.state == PadState.THANKS:
            ask = "thanks"
        body.add_widget(self._title(text(self.lang, ask), 44 * f, 0.18))
        row = BoxLayout(spacing=14 * u, size_hint=(1, 0.54))
        labels = v.labels if self.lang == "zh" else v.labels_en
        scale = len(labels)
        inner = (self.width - 36 * u - (scale - 1) * 14 * u) / scale - 12 * u
        font = 30 * f
        for cap in labels:  # one size for all keys: no word broken, at most two lines
            font = min(
                [font, fit(cap, font, inner * 1.9)]
                + [fit(word, font, inner * 0.95) for word in cap.split()]
            )
        if any(fit(cap, font, inner * 0.95) < font for cap in labels):
            # two lines must fit the caption's share of a key, whatever banners are shown
            body_h = self._body_h(v) - 16 * u - 24 * u
            caption_h = (body_h * 0.54 - 16 * u) * 0.38
            font = min(font, caption_h / 2.5)
        colours = key_colours(v.moods)
        for i in reversed(range(scale)):  # best first, from the left, as on the keypads
            b = RateButton(i + 1, labels[i], v.moods[i], colours[i], u, font)
            b.bind(on_press=lambda w: self.on_score(w.score))
            self.rate_buttons.append(b)
            row.add_widget(b)
        body.add_widget(row)
        self._countdown = label(self._seconds(v), 24 * f, color=MUTED, size_hint=(1, 0.08))
        body.add_widget(self._countdown)
        return body

    def _thanks(self, v: PadView) -> BoxLayout:
        u, f = self.u, self.f
        body = BoxLayout(orientation="vertical", padding=30 * u, spacing=10 * u)
        if v.score is not None:
            body.add_widget(Face(v.moods[v.score - 1], size_hint=(1, 0.34)))
        body.add_widget(self._title(text(self.lang, "thanks"), 60 * f, 0.3))
        if v.score is not None:
            labels = v.labels if self.lang == "zh" else v.labels_en
            body.add_widget(label(labels[v.score - 1], 36 * f, color=ACCENT, size_hint=(1, 0.18)))
        body.add_widget(
            label(text(self.lang, "thanks_sub"), 30 * f, color=MUTED, size_hint=(1, 0.18))
        )
        return body

    def _reasons(self, v: PadView) -> BoxLayout:
        """With a keypad, the reasons the keys can pick sit in one row in the rating keys'
        order (best on the left), each in the colour and face of its key; the rest (more
        reasons than keys) below, for touch. Without a keypad: all reasons, in order."""
        u, f = self.u, self.f
        body = BoxLayout(orientation="vertical", padding=(20 * u, 8 * u), spacing=8 * u)
        body.add_widget(self._title(text(self.lang, "reason"), 44 * f, 0.15))
        reasons = v.reasons if self.lang == "zh" else v.reasons_en
        n, scale = len(reasons), len(v.labels)
        keyed = min(n, scale) if self.keypad else 0
        extra = list(range(keyed, n))
        if keyed:
            row = BoxLayout(spacing=12 * u, size_hint=(1, 0.6 if extra else 0.73))
            inner = (self.width - 40 * u - (scale - 1) * 12 * u) / scale - 12 * u
            shown, font = self._lines([reasons[i] for i in range(keyed)], 30 * f, inner)
            labels = v.labels if self.lang == "zh" else v.labels_en
            # hint and reason must fit their share of a tile (measured, wrapped as drawn)
            tile_h = (self._body_h(v) - 16 * u - 40 * u) * (0.6 if extra else 0.73) - 20 * u
            text_w = inner - 4 * u
            hint_font = min(
                fit_box(
                    text(self.lang, "reason_key", name=labels[i]),
                    font * 0.72,
                    text_w,
                    tile_h * 0.3 - 2,
                    bold=False,
                )
                for i in range(keyed)
            )
            font = min(fit_box(shown[i], font, text_w, tile_h * 0.7 - 2) for i in range(keyed))
            colours = key_colours(v.moods)
            for score in range(scale, 0, -1):  # as the rating keys: best on the left
                i = score - 1
                if i >= keyed:
                    row.add_widget(Widget())  # a key with no reason: its place stays empty
                    continue
                hint = text(self.lang, "reason_key", name=labels[i])
                b = ReasonButton(i, reasons[i], hint, colours[i], u, font, hint_font, shown[i])
                b.bind(on_press=lambda w: self.on_reason(w.reason_index))
                self.reason_buttons.append(b)
                row.add_widget(b)
            body.add_widget(row)
        if extra:
            cols = 1 if len(extra) <= 2 and not keyed else 2 if len(extra) <= 6 else 3
            if keyed:
                cols = min(len(extra), 4)
            grid = GridLayout(cols=cols, spacing=10 * u, size_hint=(1, 0.18 if keyed else 0.73))
            width = (self.width - 40 * u) / cols - 20 * u
            rows = -(-len(extra) // cols)
            cell_h = (self._body_h(v) - 16 * u - 40 * u) * (0.18 if keyed else 0.73) / rows
            texts, font = self._lines(
                [reasons[i] for i in extra], (26 if keyed else 34) * f, width, cell_h - 10 * u
            )
            for i, shown_text in zip(extra, texts, strict=True):
                b = PlainReason(i, reasons[i], font, shown_text)
                b.bind(on_press=lambda w: self.on_reason(w.reason_index))
                self.reason_buttons.append(b)
                grid.add_widget(b)
            body.add_widget(grid)
        self._countdown_prefix = (
            f"{text(self.lang, 'reason_keys' if keyed else 'reason_touch')}    "
        )
        self._countdown = label(
            self._countdown_prefix + self._seconds(v), 24 * f, color=MUTED, size_hint=(1, 0.09)
        )
        body.add_widget(self._countdown)
        return body

    @staticmethod
    def _fits(captions: list[str], font: float, width: float) -> float:
        """One font size for a row of captions: each fits in two lines of `width`, and no
        word is broken. A CJK caption keeps the lines it has (Kivy does not wrap it)."""
        for cap in captions:
            for line in cap.split("\n"):
                font = min(
                    [font, fit(line, font, width * (1.0 if line.isascii() else 0.98) * 1.9)]
                    + [fit(word, font, width * 0.95) for word in line.split()]
                )
                if not line.isascii():  # CJK text does not wrap at spaces: one line each
                    font = min(font, fit(line, font, width * 0.95))
        return font

    def _lines(
        self, captions: list[str], font: float, width: float, height: float | None = None
    ) -> tuple[list[str], float]:
        """The captions as shown and their font: long CJK reasons on two lines when that sets
        them clearly larger than one line would (a 480x320 pad, elderly patients), as long
        as two lines fit `height`."""
        one = self._fits(captions, font, width)
        split = [two_lines(c) for c in captions]
        if split == captions:
            return captions, one
        two = self._fits(split, font, width)
        if height is not None:
            two = min(two, height / 2.6)
        return (split, two) if two >= one * TWO_LINES_GAIN else (captions, one)

    def _message(
        self, title: str, sub: str, color: tuple[float, ...], staff: Staff | None = None
    ) -> BoxLayout:
        u, f = self.u, self.f
        body = BoxLayout(orientation="vertical", padding=36 * u, spacing=12 * u)
        _paint(body, color)
        body.add_widget(self._title(title, 80 * f, 0.45))
        body.add_widget(label(sub, 34 * f, color=MUTED, size_hint=(1, 0.3)))
        if staff is not None:
            body.add_widget(
                label(
                    f"{staff.name}  {text(self.lang, 'staff_no')} {staff.staff}",
                    28 * f,
                    color=MUTED,
                    size_hint=(1, 0.25),
                )
            )
        return body

    def _title(self, txt: str, size: float, share: float) -> Label:
        """A one-line heading taking `share` of the body's height."""
        return label(txt, fit(txt, size, self.width * 0.88), bold=True, size_hint=(1, share))

    def _seconds(self, v: PadView) -> str:
        if v.seconds_left is None or v.state not in (PadState.PROMPTED, PadState.REASON):
            return ""
        return text(self.lang, "seconds", s=int(v.seconds_left + 0.999))
