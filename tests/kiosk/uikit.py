"""Drives the real kiosk window in-process: pump Kivy's event loop, touch widgets, press keys.
Used by the display tests, the screenshot script and the benchmark (one window per process)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")

KEYS = {
    "tab": 9,
    "enter": 13,
    "esc": 27,
    "up": 273,
    "down": 274,
    "right": 275,
    "left": 276,
    "backspace": 8,
}


class UI:
    """The kiosk root widget in the process's one window, at a given size."""

    def __init__(self, service: Any, size: tuple[int, int] = (1280, 800)) -> None:
        from kivy.config import Config

        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
        from kivy.base import EventLoop

        import kiosk.ui.app  # noqa: F401 - sets exit_on_escape before the window exists

        EventLoop.ensure_window()
        self.loop = EventLoop
        self.window = EventLoop.window
        self.window.size = size
        self.pump_for(0.2)
        from kiosk.ui.app import KioskRoot

        self.root = KioskRoot(service)
        self.window.add_widget(self.root)
        self.pump_until(
            lambda: self.root.view is not None and self.root.built is not None, what="first view"
        )

    def close(self) -> None:
        self.root.detach()
        self.window.remove_widget(self.root)
        self.pump_for(0.05)

    # the loop -----------------------------------------------------------------------------

    def pump_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.loop.idle()
            time.sleep(0.005)

    def pump_until(self, pred: Callable[[], Any], timeout: float = 5.0, what: str = "UI") -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.loop.idle()
            v = pred()
            if v:
                return v
            time.sleep(0.005)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; screen is {self.screen!r}"
        )

    @property
    def screen(self) -> str | None:
        return self.root.view.screen if self.root.view else None

    def wait_screen(self, name: str, timeout: float = 5.0) -> None:
        self.pump_until(
            lambda: self.screen == name and self.root.built is not None,
            timeout,
            what=f"screen {name}",
        )
        self.pump_for(0.05)

    # input --------------------------------------------------------------------------------

    def key(self, name: str, times: int = 1, codepoint: str | None = None) -> None:
        for _ in range(times):
            code = KEYS.get(name, ord(name) if len(name) == 1 else 0)
            self.window.dispatch(
                "on_key_down", code, 0, codepoint or (name if len(name) == 1 else None), []
            )
            self.window.dispatch("on_key_up", code, 0)
            self.loop.idle()

    def tap(self, widget: Any) -> None:
        """A real touch down/up at the widget's centre, through the window's dispatch, as a
        patient taps: once the page has been on the screen for a moment (a touch sooner is
        ignored as the end of the tap that opened it: kiosk.ui.app.TAP_GUARD_S)."""
        from kiosk.ui.app import TAP_GUARD_S

        self.pump_until(
            lambda: time.monotonic() - self.root.page_at >= TAP_GUARD_S, what="tap guard"
        )
        self.touch(widget)

    def touch(self, widget: Any) -> None:
        """A touch down/up at the widget's centre now, whatever the page's age."""
        from kivy.tests.common import UnitTestTouch

        x, y = widget.to_window(*widget.center)
        t = UnitTestTouch(x, y)
        t.touch_down()
        self.loop.idle()
        t.touch_up()
        self.loop.idle()

    def buttons(self) -> list[Any]:
        return list(self.root.built.focus) if self.root.built else []

    def button(self, text_part: str) -> Any:
        for b in self.buttons() + [self.root.lang_button]:
            if text_part in b.text:
                return b
        raise AssertionError(
            f"no button with {text_part!r} on {self.screen}: {[b.text for b in self.buttons()]}"
        )

    def texts(self) -> str:
        from kivy.uix.label import Label

        out = []
        stack = [self.root]
        while stack:
            w = stack.pop()
            if isinstance(w, Label) and w.text:
                out.append(w.text)
            stack.extend(w.children)
        return "\n".join(out)

    def shot(self, path: str) -> None:
        self.pump_for(0.15)
        self.root.export_to_png(path)
