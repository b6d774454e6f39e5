"""The kiosk window: renders the service's `View`, moves focus with keys, reports every touch or key
as activity, and keeps patients inside the app (no close, no Escape to a desktop)."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from terminal import kivy_setup

kivy_setup.prepare()  # before Kivy's first import: it reads its environment once

from kivy.config import Config  # noqa: E402

# Before the window exists: Escape must mean "back", never "quit"; no multitouch emulation dots.
Config.set("kivy", "exit_on_escape", "0")
Config.set("input", "mouse", "mouse,multitouch_on_demand")
# No multisampling: flat UI, and on a Pi's GPU or a software renderer MSAA costs a frame's time.
Config.set("graphics", "multisamples", "0")
# Nothing on these screens moves by itself: 30 frames a second keep touches and scrolling
# prompt, and Kivy's loop idles at ~3 % of a core here instead of ~5 % at its 60 (on a Pi-class
# budget that is the CPU a card read needs; BENCHMARKS.md).
Config.set("graphics", "maxfps", "30")

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.boxlayout import BoxLayout  # noqa: E402
from kivy.uix.floatlayout import FloatLayout  # noqa: E402
from kivy.uix.image import Image  # noqa: E402
from kivy.uix.relativelayout import RelativeLayout  # noqa: E402
from kivy.uix.scrollview import ScrollView  # noqa: E402

from kiosk.i18n import tr  # noqa: E402
from kiosk.service import KioskService  # noqa: E402
from kiosk.ui.screens import Built, Screens  # noqa: E402
from kiosk.ui.widgets import (  # noqa: E402
    BAD,
    BG,
    GOOD,
    INK,
    PRIMARY_DARK,
    WARN,
    WHITE,
    FitButton,
    FitLabel,
    FocusButton,
    Panel,
    Sizes,
    WrapLabel,
    paint_background,
    register_cjk_font,
)
from kiosk.views import NoticeView, Screen, View  # noqa: E402
from terminal import marks, startup_gc  # noqa: E402

log = logging.getLogger("careterm.kiosk.ui")

KEY_TAB, KEY_ENTER, KEY_KP_ENTER, KEY_ESC, KEY_BACKSPACE = 9, 13, 271, 27, 8
KEY_UP, KEY_DOWN, KEY_RIGHT, KEY_LEFT = 273, 274, 275, 276
HIDDEN_TAPS = 5
HIDDEN_WINDOW_S = 3.0
TAP_GUARD_S = 0.5
"""A touch this soon after a new page appeared is the second tap of the double tap (or the
tremor) that opened it, not a choice: ignored. It answered the survey's next question unseen
and chose whatever appointment lay under "查询" on the list a lookup opened."""
ENTER_OPENS_S = 1.0
"""A page that appears this soon after an Enter was opened by it: a second Enter within
TAP_GUARD_S of it, with no other key between, is ignored as well (a card read's list still
takes Enter at once, SPEC 5)."""


def page_key(v: View) -> tuple[str, ...]:
    """Views of the same page (the focus stays put when one is redrawn: a keypad digit)."""
    d = v.data
    return (
        str(v.screen),
        *(str(getattr(d, k, "")) for k in ("step", "method", "dept", "qid", "problem")),
    )


class KioskRoot(FloatLayout):
    """Top bar (logo, hospital, clock), status line, the current screen (`screen_area`), the bar of
    switches every screen has (care mode, call staff, language), and the idle overlay."""

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
        self.key_focus: int | None = None
        self.view: View | None = None
        self.built: Built | None = None
        self.focus_index: int | None = 0
        self.rendered: list[Callable[[View], None]] = []
        """Called after a view is on screen (tests and the benchmark)."""
        self._taps: list[float] = []
        self.page_at = 0.0
        """When the page on screen appeared (time.monotonic): TAP_GUARD_S."""
        self._page_pending = 0
        """The new page's first frame and the collection after it are still to come."""
        self._enter_at = -1e9
        self._page_by_enter = False
        self._overlay: FloatLayout | None = None
        self._busy: Panel | None = None
        self._busy_panels: dict[tuple[str, int], Panel] = {}  # built once per language and size
        self._collect_old = Clock.create_trigger(self._collect_old_screens, 0)
        """On the loop's next turn, after the frame that shows the new screen."""
        self._follow: tuple[ScrollView, Any] | None = None
        """The list and the focused widget kept in its view while the screen is laid out."""
        self._follow_trigger = Clock.create_trigger(self._scroll_now, -1)  # before the frame
        self.frame = BoxLayout(orientation="vertical")
        self.add_widget(self.frame)
        self.screen_area = RelativeLayout()
        """Holds the current screen's widgets, and only those: a new screen replaces the last
        one within one frame (Kivy's ScreenManager, even with NoTransition, draws a frame with
        both screens before a second without the old one)."""
        self._layout_chrome()
        Window.bind(on_key_down=self._on_key, size=self._on_resize, on_flip=self._drawn)
        Window.bind(on_flip=self._page_drawn)
        Clock.schedule_interval(self._clock, 1.0)
        service.on_view(lambda v: Clock.schedule_once(lambda dt: self.apply(v), 0))

    # chrome -------------------------------------------------------------------------------

    def _layout_chrome(self) -> None:
        s = self.sizes
        self.frame.clear_widgets()
        if self.screen_area.parent is not None:
            self.screen_area.parent.remove_widget(self.screen_area)
        bar = BoxLayout(
            size_hint_y=None, height=round(s.u * 10), padding=(s.pad, s.gap), spacing=s.gap
        )
        paint_background(bar, PRIMARY_DARK)
        self.logo = Image(size_hint_x=None, width=0, fit_mode="contain")
        bar.add_widget(self.logo)
        self.title_label = FitLabel(
            "", font_size=s.body, floor=s.floor * 0.8, bold=True, color=WHITE, halign="left"
        )
        self.clock_label = FitLabel(
            "",
            font_size=s.body,
            floor=s.floor * 0.8,
            color=WHITE,
            size_hint_x=None,
            width=s.u * 16,
            halign="right",
        )
        bar.add_widget(self.title_label)
        bar.add_widget(self.clock_label)
        self.frame.add_widget(bar)
        self.status = WrapLabel(
            "", font_size=s.small, color=WHITE, halign="center", padding=(s.pad, s.gap // 2)
        )
        paint_background(self.status, WARN)
        self.frame.add_widget(self.status)
        self.frame.add_widget(self.screen_area)
        # every screen: care mode, call staff, language (the last focus stops)
        tools = BoxLayout(
            size_hint_y=None,
            height=max(round(s.u * 11 * (1.25 if s.care else 1)), 60) + s.gap,
            padding=(s.pad, s.gap // 2),
            spacing=s.gap,
        )
        paint_background(tools, (0.90, 0.92, 0.95, 1))
        small = round(s.small * (1.0 if s.care else 1.1))
        self.care_button = FitButton(
            "", self._toggle_care, floor=s.floor * 0.8, font_size=small, color_bg=GOOD
        )
        self.help_button = FitButton(
            "", self.service.help, floor=s.floor * 0.8, font_size=small, color_bg=BAD
        )
        self.lang_button = FitButton(
            "", self._toggle_lang, floor=s.floor * 0.8, font_size=small, color_bg=PRIMARY_DARK
        )
        for b in (self.care_button, self.help_button, self.lang_button):
            tools.add_widget(b)
        self.frame.add_widget(tools)
        if self.demo_cards and self._present is not None:
            self.frame.add_widget(self._demo_strip())
        self._clock(0)

    def _page_drawn(self, *_: object) -> None:
        """A new page's first frame is on the screen (a list of long names takes a software
        renderer some tenths of a second), and the old page is collected: the tap guard counts
        from the later of the two (touches made meanwhile are dispatched only after them)."""
        if self._page_pending:
            self._page_pending -= 1
            self.page_at = time.monotonic()

    def _drawn(self, *_: object) -> None:
        """The first frame is on the screen: the fonts are warmed on the next turn of the loop
        (not before that frame: start-up on a Pi-class CPU)."""
        Window.unbind(on_flip=self._drawn)
        Clock.schedule_once(lambda dt: self._warm_fonts(), 0)

    def _warm_fonts(self) -> None:
        """Open the font at the sizes the screens use now, not on the first patient's card."""
        from kivy.core.text import Label as CoreLabel

        s = self.sizes
        for size in {s.title, s.body, s.small, round(s.u * 13), round(s.u * 16)}:
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
            FitLabel("演示卡 Demo cards", font_size=s.small * 0.8, color=WHITE, size_hint_x=0.6)
        )
        for kind, number, name, label in self.demo_cards:
            b = FitButton(
                label,
                (lambda k=kind, n=number, m=name: self._present(k, n, m)),
                color_bg=(0.35, 0.35, 0.35, 1),
                font_size=s.small * 0.8,
                floor=12,
            )
            strip.add_widget(b)
        return strip

    def _clock(self, dt: float) -> None:
        self.clock_label.text = time.strftime("%H:%M")

    def _resize_to(self, care: bool) -> None:
        new = Sizes(*Window.size, care=care)
        if (new.w, new.h, new.care) == (self.sizes.w, self.sizes.h, self.sizes.care):
            return
        self.sizes = new
        self._layout_chrome()
        if self.view is not None:
            v, self.view = self.view, None
            self.apply(v)

    def _on_resize(self, *_: Any) -> None:
        self._resize_to(self.sizes.care)

    def _toggle_lang(self) -> None:
        lang = "en" if (self.view and self.view.lang == "zh") else "zh"
        self.service.set_language(lang)

    def _toggle_care(self) -> None:
        self.service.set_care(None)

    # rendering ----------------------------------------------------------------------------

    def apply(self, view: View) -> None:
        if self.view is None or view.care != self.sizes.care:
            self.view = None
            self._resize_to(view.care)
        old = self.view
        self.view = view
        L = view.lang
        site = view.site
        name = (site.hospital_name_en or site.hospital_name) if L == "en" else site.hospital_name
        self.title_label.text = name or tr("app_title", L)
        if site.logo and not self.logo.source:
            self.logo.source = site.logo
            self.logo.width = self.title_label.height or self.sizes.u * 8
        self.lang_button.text = tr("btn_lang", L)
        self.help_button.text = tr("btn_help", L)
        self.care_button.text = ("✓ " if view.care else "") + tr("btn_care", L)
        self.care_button.base_color = list(GOOD if view.care else (0.25, 0.32, 0.40, 1))
        self.care_button._layout()
        desk = (site.help_desk_en if L == "en" else site.help_desk) or tr("default_help_desk", L)
        status = "   ".join(tr(k, L, desk=desk) for k in view.status)
        self.status.text = status
        self.status.opacity = 1 if status else 0
        if not status:
            self.status.height = 0
        if old is None or old.content != view.content or old.lang != view.lang:
            new_page = old is None or page_key(old) != page_key(view)
            if new_page:
                self.key_focus = None
                if old is None or old.screen != view.screen:
                    self.local.clear()
            else:
                self.key_focus = self.focus_index
            self._hide_busy()
            self.rebuild()
            if new_page:  # and again once drawn: a touch queued meanwhile is guarded too
                self.page_at = time.monotonic()
                self._page_pending = 2
                # Opened by Enter (the core answers in milliseconds; a print takes longer, but
                # the busy panel takes keys meanwhile), not by a card: Enter is guarded too.
                self._page_by_enter = self.page_at - self._enter_at < ENTER_OPENS_S
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
                replace(view, screen=Screen.NOTICE, data=NoticeView("failed_title", "failed_text"))
            )
        self.screen_area.clear_widgets()
        self.screen_area.add_widget(built.widget)
        self.built = built
        self.set_focus(built.initial)
        self._update_live(view)
        self._collect_old()

    def _collect_old_screens(self, *_: object) -> None:
        """A screen's widgets are reference cycles (Kivy's parent and children, the callbacks'
        closures): the one just replaced, thousands of objects with its label textures, is freed
        only by a full collection, which Python runs rarely once it has moved into the oldest
        generation. Collected here, after the new screen's frame, it costs a few milliseconds
        (the heap frozen at start-up is not walked: terminal.startup_gc); left to Python, the
        kiosk grew by ~9 MB a card read, to ~40 MB more (BENCHMARKS.md)."""
        gc.collect()
        self._page_drawn()

    def keep_focus_and_rebuild(self) -> None:
        """A UI-only change (the PIN being typed): redraw, the focus where it was."""
        self.key_focus = self.focus_index
        self.service.activity()
        self.rebuild()

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
                # Opaque, and the screen under it hidden: the masked name, the appointment or
                # a typed phone number must not stay legible for a passer-by.
                self.screen_area.opacity = 0
                self._overlay = FloatLayout()
                paint_background(self._overlay, (0.10, 0.14, 0.20, 1))
                self._overlay_text = centred_card(text, self.sizes.body, 0.85, markup=True)
                self._overlay.add_widget(self._overlay_text)
                self.add_widget(self._overlay)
            else:
                self._overlay_text.text = text
        elif self._overlay is not None:
            self.remove_widget(self._overlay)
            self._overlay = None
            self.screen_area.opacity = 1

    def show_busy(self) -> None:
        """ "One moment" over the screen until the next screen arrives (taps meanwhile ignored)."""
        if self._busy is not None or self.view is None:
            return
        key = (self.view.lang, self.sizes.title)
        if key not in self._busy_panels:
            # Kept: on a Pi-class CPU, making the label again would hold up the ticket's print.
            self._busy_panels[key] = centred_card(tr("busy", self.view.lang), self.sizes.title, 0.7)
        self._busy = self._busy_panels[key]
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
        return [*items, self.care_button, self.help_button, self.lang_button]

    def set_focus(self, index: int | None) -> None:
        items = self.focusables
        if not items:
            return
        self.focus_index = None if index is None else index % len(items)
        self._follow = None
        for i, b in enumerate(items):
            b.focused = i == self.focus_index
        if self.focus_index is not None:
            self._scroll_to(items[self.focus_index])

    def _scroll_to(self, w: Any) -> None:
        """Bring the focused widget into its list's view. A screen just built is not laid out
        yet (its list's height comes from its texts, over several layout passes): the scroll is
        made again, before the frame is drawn, whenever the list's height changes, until the
        patient touches the screen or the focus moves (the first appointment that can be
        checked in was left below a "too late" one, out of sight, in care mode and at 800x480)."""
        p = w.parent
        for _ in range(12):  # the window is its own parent: never walk up forever
            if p is None or isinstance(p, ScrollView):
                break
            p = p.parent
        if not isinstance(p, ScrollView) or not p.children:
            self._follow = None
            return
        self._follow = (p, w)
        if not getattr(p, "_follows_focus", False):
            p._follows_focus = True
            p.bind(height=self._follow_trigger)
            p.children[0].bind(height=self._follow_trigger)
        self._scroll_now()

    def _scroll_now(self, *_: object) -> None:
        if self._follow is None:
            return
        p, w = self._follow
        if not p.children:
            return
        content = p.children[0]
        layout = getattr(content, "_trigger_layout", None)
        if layout is not None and layout.is_triggered:
            # Kivy's scroll_to would put itself off to the next frame, after this check, and
            # then scroll content that fits down to the bottom: once the layout is done.
            self._follow_trigger()
            return
        if content.height <= p.height:
            # Content that fits stays at the top (an earlier layout pass, taller, scrolled it).
            p.scroll_y = 1
            return
        try:
            p.scroll_to(w, padding=10, animate=False)
        except Exception:
            pass

    @property
    def focused(self) -> FocusButton | None:
        items = self.focusables
        return items[self.focus_index] if items and self.focus_index is not None else None

    def _on_key(
        self, window: Any, key: int, scancode: int, codepoint: str | None, modifiers: list[str]
    ) -> bool:
        self.service.activity()
        if self._overlay is not None or self._busy is not None:
            return True  # the key only wakes the kiosk up, or a check-in is under way
        if key not in (KEY_ENTER, KEY_KP_ENTER):
            self._page_by_enter = False  # an Enter after moving the focus is meant
        b = self.built
        cur = self.focus_index
        if key in (KEY_UP, KEY_LEFT) or (key == KEY_TAB and "shift" in modifiers):
            self.set_focus(-1 if cur is None else cur - 1)
        elif key in (KEY_DOWN, KEY_RIGHT, KEY_TAB):
            self.set_focus(0 if cur is None else cur + 1)
        elif key in (KEY_ENTER, KEY_KP_ENTER):
            if self._page_by_enter and time.monotonic() - self.page_at < TAP_GUARD_S:
                return True  # a double Enter: "查询" then checking in what the list focused
            self._enter_at = time.monotonic()
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
        if time.monotonic() - self.page_at < TAP_GUARD_S:
            return True  # the rest of the tap that opened this page
        self._follow = None  # the patient may scroll the list now
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
        Window.unbind(on_key_down=self._on_key, size=self._on_resize, on_flip=self._drawn)
        Window.unbind(on_flip=self._page_drawn)
        Clock.unschedule(self._clock)


def centred_card(text: str, font_size: float, width: float, **kw: Any) -> Panel:
    """A white card of dark text in the middle of the window, `width` of it wide."""
    return Panel(
        text,
        tint=WHITE,
        halign="center",
        font_size=font_size,
        color=INK,
        size_hint=(width, None),
        pos_hint={"center_x": 0.5, "center_y": 0.5},
        **kw,
    )


class KioskApp(App):
    title = "careterm kiosk"

    def __init__(self, kiosk: Any, on_stop: Callable[[], None] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.kiosk = kiosk
        self._on_stop = on_stop

    def build(self) -> KioskRoot:
        Window.bind(on_request_close=self._request_close)
        cards, present = demo_cards(self.kiosk.card_reader)
        root = KioskRoot(self.kiosk.service, cards, present)
        marks.frames(Window, lambda: f"kiosk {root.view.screen if root.view else '-'}")
        return root

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


def run_ui(
    kiosk: Any, life: Any, *, fullscreen: bool, first_frame: threading.Event | None = None
) -> None:
    size = os.environ.get("CARETERM_KIOSK_SIZE")  # e.g. 1080x1920 for a portrait test window
    dims = tuple(int(x) for x in size.split("x")) if size else None
    configure_window(fullscreen, dims)  # type: ignore[arg-type]
    app = KioskApp(kiosk)
    kiosk.service.on_exit = lambda: Clock.schedule_once(lambda dt: app.quit(), 0)

    def watch_stop(dt: float) -> None:
        if life.stop_event.is_set():
            app.quit()

    def flipped(*_: Any) -> None:
        # The attract screen's first frame is on the screen: the documents may be read now
        # (on a Pi-class CPU they would otherwise share it with drawing that frame).
        Window.unbind(on_flip=flipped)
        log.info("kiosk ui: first frame drawn (%.2f CPU-s since start)", time.process_time())
        if first_frame is not None:
            first_frame.set()

    def first_view(view: View) -> None:
        # Built; drawn at the end of this turn of the loop (terminal.startup_gc: a second on).
        app.root.rendered.remove(first_view)
        Window.bind(on_flip=flipped)
        Clock.schedule_once(lambda dt: startup_gc.started(), 1.0)

    def on_start(*_: Any) -> None:
        app.root.rendered.append(first_view)

    app.bind(on_start=on_start)
    Clock.schedule_interval(watch_stop, 0.5)
    app.run()
