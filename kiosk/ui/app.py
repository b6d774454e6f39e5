"""The kiosk window: renders the service's `View`, moves focus with keys, reports every touch or key
as activity, and keeps patients inside the app (no close, no Escape to a desktop)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from kivy.config import Config

# Before the window exists: Escape must mean "back", never "quit"; no multitouch emulation dots.
Config.set("kivy", "exit_on_escape", "0")
Config.set("input", "mouse", "mouse,multitouch_on_demand")
# No multisampling: flat UI, and on a Pi's GPU or a software renderer MSAA costs a frame's time.
Config.set("graphics", "multisamples", "0")

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.boxlayout import BoxLayout  # noqa: E402
from kivy.uix.floatlayout import FloatLayout  # noqa: E402
from kivy.uix.label import Label  # noqa: E402

from kiosk.i18n import tr  # noqa: E402
from kiosk.service import KioskService, View  # noqa: E402
from kiosk.ui.screens import Built, Screens  # noqa: E402
from kiosk.ui.widgets import (  # noqa: E402
    BG,
    INK,
    PRIMARY_DARK,
    WARN,
    WHITE,
    FocusButton,
    Panel,
    Sizes,
    WrapLabel,
    paint_background,
    register_cjk_font,
)

log = logging.getLogger("careterm.kiosk.ui")

KEY_TAB, KEY_ENTER, KEY_KP_ENTER, KEY_ESC, KEY_BACKSPACE = 9, 13, 271, 27, 8
KEY_UP, KEY_DOWN, KEY_RIGHT, KEY_LEFT = 273, 274, 275, 276
HIDDEN_TAPS = 5
HIDDEN_WINDOW_S = 3.0


class KioskRoot(FloatLayout):
    """Top bar (title, clock, language), status line, the screen, and the idle overlay."""

    def __init__(
        self,
        service: KioskService,
        demo_cards: list[tuple[str, str, str, str]] | None = None,
        present: Callable[[str, str, str | None], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.demo_cards = demo_cards or []
        self._present = present
        register_cjk_font()
        paint_background(self, BG)
        self.service = service
        self.sizes = Sizes(*Window.size)
        self.local: dict[str, Any] = {}
        self.view: View | None = None
        self.built: Built | None = None
        self.focus_index = 0
        self.rendered: list[Callable[[View], None]] = []
        """Called after a view is on screen (tests and the benchmark)."""
        self._taps: list[float] = []
        self._overlay: FloatLayout | None = None
        self._busy: Panel | None = None
        self.frame = BoxLayout(orientation="vertical")
        self.add_widget(self.frame)
        self._layout_chrome()
        Window.bind(on_key_down=self._on_key, size=self._on_resize)
        self._warm_fonts()
        service.on_view(lambda v: Clock.schedule_once(lambda dt: self.apply(v), 0))

    # chrome -------------------------------------------------------------------------------

    def _layout_chrome(self) -> None:
        s = self.sizes
        self.frame.clear_widgets()
        bar = BoxLayout(
            size_hint_y=None, height=round(s.u * 10), padding=(s.pad, s.gap), spacing=s.gap
        )
        paint_background(bar, PRIMARY_DARK)
        self.title_label = Label(
            text="", font_size=s.body, bold=True, color=WHITE, halign="left", valign="middle"
        )
        self.title_label.bind(size=lambda w, *_: setattr(w, "text_size", w.size))
        self.clock_label = Label(
            text="", font_size=s.body, color=WHITE, size_hint_x=None, width=s.u * 14
        )
        self.lang_button = FocusButton(
            "",
            self._toggle_lang,
            color_bg=(1, 1, 1, 0.18),
            font_size=s.small,
            size_hint_x=None,
            width=s.u * 22,
        )
        bar.add_widget(self.title_label)
        bar.add_widget(self.clock_label)
        bar.add_widget(self.lang_button)
        self.frame.add_widget(bar)
        self.status = WrapLabel(
            "", font_size=s.small, color=WHITE, halign="center", padding=(s.pad, s.gap // 2)
        )
        paint_background(self.status, WARN)
        self.frame.add_widget(self.status)
        self.content = BoxLayout()
        self.frame.add_widget(self.content)
        if self.demo_cards and self._present is not None:
            self.frame.add_widget(self._demo_strip())
        Clock.schedule_interval(self._clock, 1.0)
        self._clock(0)

    def _warm_fonts(self) -> None:
        """Open the font at every size the screens use now, not on the first patient's card."""
        from kivy.core.text import Label as CoreLabel

        s = self.sizes
        for size in {
            s.title,
            s.body,
            s.small,
            round(s.u * 13),
            round(s.u * 16),
            round(s.title * 1.15),
            round(s.u * 5.0),
        }:
            for bold in (False, True):
                CoreLabel(
                    text="预约签到 B023 0123456789 Check-in", font_size=size, bold=bold
                ).refresh()

    def _demo_strip(self) -> BoxLayout:
        """`careterm demo` only (simulated reader): tap a demo card instead of presenting one."""
        s = self.sizes
        strip = BoxLayout(
            size_hint_y=None, height=round(s.u * 8), padding=(s.pad, s.gap // 2), spacing=s.gap
        )
        paint_background(strip, (0.2, 0.2, 0.2, 1))
        strip.add_widget(
            Label(
                text="演示卡 Demo cards",
                font_size=s.small * 0.8,
                color=WHITE,
                size_hint_x=None,
                width=s.u * 20,
            )
        )
        for kind, number, name, label in self.demo_cards:
            b = FocusButton(
                label,
                (lambda k=kind, n=number, m=name: self._present(k, n, m)),
                color_bg=(0.35, 0.35, 0.35, 1),
                font_size=s.small * 0.8,
            )
            strip.add_widget(b)
        return strip

    def _clock(self, dt: float) -> None:
        self.clock_label.text = time.strftime("%H:%M")

    def _on_resize(self, *_: Any) -> None:
        new = Sizes(*Window.size)
        if (new.w, new.h) == (self.sizes.w, self.sizes.h):
            return
        self.sizes = new
        self._layout_chrome()
        if self.view is not None:
            v, self.view = self.view, None
            self.apply(v)

    def _toggle_lang(self) -> None:
        lang = "en" if (self.view and self.view.lang == "zh") else "zh"
        self.service.set_language(lang)

    # rendering ----------------------------------------------------------------------------

    def apply(self, view: View) -> None:
        old = self.view
        self.view = view
        L = view.lang
        self.title_label.text = tr("app_title", L)
        self.lang_button.text = tr("btn_lang", L)
        status = "   ".join(tr(k, L) for k in view.status)
        self.status.text = status
        self.status.opacity = 1 if status else 0
        if not status:
            self.status.height = 0
        if old is None or old.content != view.content:
            if old is None or old.screen != view.screen:
                self.local.clear()
            self._hide_busy()
            self.rebuild()
        self._update_live(view)
        for fn in list(self.rendered):
            fn(view)

    def rebuild(self) -> None:
        view = self.view
        if view is None:
            return
        try:
            built = Screens(self).build(view)
        except Exception:
            log.exception("screen %s could not be built", view.screen)
            built = Screens(self).build(
                View("notice", view.lang, {"title": "failed_title", "text": "failed_text"})
            )
        self.content.clear_widgets()
        self.content.add_widget(built.widget)
        self.built = built
        self.set_focus(built.initial)
        self._update_live(view)

    def _update_live(self, view: View) -> None:
        """The parts that tick every second without a rebuild: auto-home seconds, idle overlay."""
        b = self.built
        if b is not None and b.back_in_label is not None:
            b.back_in_label.text = (
                tr("done_back", view.lang, n=view.back_in) if view.back_in else ""
            )
        if view.countdown is not None:
            text = f"[size={self.sizes.title}][b]{tr('idle_title', view.lang)}[/b][/size]\n\n" + tr(
                "idle_text", view.lang, n=view.countdown
            )
            if self._overlay is None:
                # A dimmed full-screen layer: the first touch anywhere only wakes the kiosk.
                self._overlay = FloatLayout()
                paint_background(self._overlay, (0, 0, 0, 0.6))
                self._overlay_text = Panel(
                    text,
                    tint=WHITE,
                    markup=True,
                    halign="center",
                    font_size=self.sizes.body,
                    color=INK,
                    size_hint=(0.85, None),
                    pos_hint={"center_x": 0.5, "center_y": 0.5},
                )
                self._overlay.add_widget(self._overlay_text)
                self.add_widget(self._overlay)
            else:
                self._overlay_text.text = text
        elif self._overlay is not None:
            self.remove_widget(self._overlay)
            self._overlay = None

    def show_busy(self) -> None:
        """ "One moment" over the screen until the next screen arrives (taps meanwhile ignored)."""
        if self._busy is not None or self.view is None:
            return
        self._busy = Panel(
            tr("busy", self.view.lang),
            tint=WHITE,
            halign="center",
            font_size=self.sizes.title,
            color=INK,
            size_hint=(0.7, None),
            pos_hint={"center_x": 0.5, "center_y": 0.5},
        )
        self.add_widget(self._busy)
        # Never longer than a print can take (5 s) plus margin, whatever the service does.
        busy = self._busy
        Clock.schedule_once(lambda dt: self._hide_busy() if self._busy is busy else None, 8.0)

    def _hide_busy(self) -> None:
        if self._busy is not None:
            self.remove_widget(self._busy)
            self._busy = None

    # focus and keys -----------------------------------------------------------------------

    @property
    def focusables(self) -> list[FocusButton]:
        items = list(self.built.focus) if self.built else []
        return [*items, self.lang_button]

    def set_focus(self, index: int) -> None:
        items = self.focusables
        if not items:
            return
        self.focus_index = index % len(items)
        for i, b in enumerate(items):
            b.focused = i == self.focus_index
        self._scroll_to(items[self.focus_index])

    def _scroll_to(self, w: Any) -> None:
        from kivy.uix.scrollview import ScrollView

        p = w.parent
        for _ in range(12):  # the window is its own parent: never walk up forever
            if p is None or isinstance(p, ScrollView):
                break
            p = p.parent
        # Scrolling content that fits would push it to the bottom of the view.
        if isinstance(p, ScrollView) and p.children and p.children[0].height > p.height:
            try:
                p.scroll_to(w, padding=10, animate=False)
            except Exception:
                pass

    @property
    def focused(self) -> FocusButton | None:
        items = self.focusables
        return items[self.focus_index] if items else None

    def _on_key(
        self, window: Any, key: int, scancode: int, codepoint: str | None, modifiers: list[str]
    ) -> bool:
        self.service.activity()
        if self._overlay is not None or self._busy is not None:
            return True  # the key only wakes the kiosk up, or a check-in is under way
        b = self.built
        if key in (KEY_UP, KEY_LEFT) or (key == KEY_TAB and "shift" in modifiers):
            self.set_focus(self.focus_index - 1)
        elif key in (KEY_DOWN, KEY_RIGHT, KEY_TAB):
            self.set_focus(self.focus_index + 1)
        elif key in (KEY_ENTER, KEY_KP_ENTER):
            f = self.focused
            if f is not None:
                f.on_release()
        elif key == KEY_ESC:
            if b is not None and b.back is not None:
                b.back()
        elif key == KEY_BACKSPACE:
            if b is not None and b.backspace is not None:
                b.backspace()
        elif codepoint and codepoint.isdigit() and b is not None and b.digit is not None:
            b.digit(codepoint)
        return True

    def on_touch_down(self, touch: Any) -> bool:
        self.service.activity()
        if self._overlay is not None or self._busy is not None:
            return True  # a touch dismisses the countdown and does nothing else
        if self.title_label.collide_point(*touch.pos):
            self._hidden_tap()
        return super().on_touch_down(touch)

    def _hidden_tap(self) -> None:
        """Five taps on the title within 3 s open the maintenance PIN screen."""
        now = time.monotonic()
        self._taps = [t for t in self._taps if now - t < HIDDEN_WINDOW_S] + [now]
        if len(self._taps) >= HIDDEN_TAPS:
            self._taps = []
            self.service.go("pin")

    def detach(self) -> None:
        Window.unbind(on_key_down=self._on_key, size=self._on_resize)


class KioskApp(App):
    title = "careterm kiosk"

    def __init__(self, kiosk: Any, on_stop: Callable[[], None] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.kiosk = kiosk
        self._on_stop = on_stop

    def build(self) -> KioskRoot:
        Window.bind(on_request_close=self._request_close)
        cards, present = demo_cards(self.kiosk.card_reader)
        return KioskRoot(self.kiosk.service, cards, present)

    def _request_close(self, *_: Any, **__: Any) -> bool:
        # Patients must not leave the app: only maintenance "exit" or SIGTERM stop it.
        return not getattr(self, "_allow_close", False)

    def quit(self) -> None:
        self._allow_close = True
        self.stop()

    def on_stop(self) -> None:
        if self._on_stop is not None:
            self._on_stop()


def demo_cards(reader: Any) -> tuple[list[tuple[str, str, str, str]], Any]:
    """The cards a simulated reader offers (`careterm demo`) as buttons; none for real readers."""
    cards = getattr(reader, "cards", None)
    if not cards:
        return [], None
    return [(c["kind"], c["number"], c["name"], c["label"]) for c in cards], reader.present


def configure_window(fullscreen: bool, size: tuple[int, int] | None = None) -> None:
    if size is not None:
        Window.size = size
    if fullscreen:
        Window.fullscreen = "auto"
        Window.show_cursor = False
    Window.clearcolor = BG


def run_ui(kiosk: Any, life: Any, *, fullscreen: bool) -> None:
    size = os.environ.get("CARETERM_KIOSK_SIZE")  # e.g. 1080x1920 for a portrait test window
    dims = tuple(int(x) for x in size.split("x")) if size else None
    configure_window(fullscreen, dims)  # type: ignore[arg-type]
    app = KioskApp(kiosk)
    kiosk.service.on_exit = lambda: Clock.schedule_once(lambda dt: app.quit(), 0)

    def watch_stop(dt: float) -> None:
        if life.stop_event.is_set():
            app.quit()

    Clock.schedule_interval(watch_stop, 0.5)
    app.run()
