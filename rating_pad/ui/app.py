"""The pad's Kivy app: renders the service's views and turns touches into pad inputs.

The service calls its view listeners on the core thread; they only schedule a redraw on the
Kivy thread. Touches only put work on the service's queue, so the screen never waits on a
disk, a device or the network.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from pathlib import Path
from typing import Any

from terminal import kivy_setup, startup_gc

log = logging.getLogger("careterm.pad.ui")

WINDOW_ENV = "CARETERM_PAD_WINDOW"
"""`WxH` runs the pad in a window of that size (bench, demo); unset: full screen."""


def window_size() -> tuple[int, int] | None:
    raw = os.environ.get(WINDOW_ENV, "").lower().strip()
    if not raw:
        return None
    try:
        w, h = (int(x) for x in raw.split("x"))
    except ValueError:
        log.warning("%s=%r is not WxH (e.g. 800x480); running full screen", WINDOW_ENV, raw)
        return None
    return (w, h) if w >= 200 and h >= 150 else None


def screen_problem() -> str | None:
    """Why no screen can be opened here, or None. Checked before anything starts, because a
    Kivy window that cannot open ends the process from C, with no clean shutdown."""
    env = os.environ
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    driver = env.get("SDL_VIDEODRIVER", "")
    if driver and driver not in ("kmsdrm", "KMSDRM"):
        return None  # the operator chose a video driver: let SDL try it
    if any(Path("/dev/dri").glob("card*")):
        return None  # a Pi (or PC) console: SDL's KMS/DRM driver
    return (
        "no screen: no $DISPLAY or $WAYLAND_DISPLAY and no /dev/dri/card* for KMS; "
        "run `careterm pad --headless` on a pad without a screen"
    )


def x11_screen() -> tuple[int, int, bool] | None:
    """(width, height, a window manager runs) of the X screen in $DISPLAY, or None when this
    is not X11. Without a window manager nobody honours a full-screen request: SDL's window
    stays 800x600 in the middle of the panel and the keys on the right are cut off."""
    if not os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    name = ctypes.util.find_library("X11")
    if not name:
        return None
    x = ctypes.CDLL(name)
    vp, ul = ctypes.c_void_p, ctypes.c_ulong
    x.XOpenDisplay.argtypes, x.XOpenDisplay.restype = [ctypes.c_char_p], vp
    x.XDefaultScreen.argtypes = [vp]
    x.XDisplayWidth.argtypes = x.XDisplayHeight.argtypes = [vp, ctypes.c_int]
    x.XDefaultRootWindow.argtypes, x.XDefaultRootWindow.restype = [vp], ul
    x.XInternAtom.argtypes, x.XInternAtom.restype = [vp, ctypes.c_char_p, ctypes.c_int], ul
    x.XGetWindowProperty.argtypes = [vp, ul, ul, ctypes.c_long, ctypes.c_long, ctypes.c_int, ul]
    x.XGetWindowProperty.argtypes += [ctypes.POINTER(ul), ctypes.POINTER(ctypes.c_int)]
    x.XGetWindowProperty.argtypes += [ctypes.POINTER(ul), ctypes.POINTER(ul), ctypes.POINTER(vp)]
    x.XFree.argtypes = [vp]
    x.XCloseDisplay.argtypes = [vp]
    d = x.XOpenDisplay(None)
    if not d:
        return None
    try:
        screen = x.XDefaultScreen(d)
        width, height = x.XDisplayWidth(d, screen), x.XDisplayHeight(d, screen)
        wm = False
        atom = x.XInternAtom(d, b"_NET_SUPPORTING_WM_CHECK", 1)  # EWMH: set by a running WM
        if atom:
            kind, fmt, n, after, prop = ul(), ctypes.c_int(), ul(), ul(), vp()
            ok = x.XGetWindowProperty(
                d, x.XDefaultRootWindow(d), atom, 0, 1, 0, 0, kind, fmt, n, after, prop
            )
            wm = ok == 0 and n.value > 0
            if prop.value:
                x.XFree(prop)
        return width, height, wm
    finally:
        x.XCloseDisplay(d)


def configure_kivy() -> None:
    """Settings Kivy reads once, before its window exists."""
    kivy_setup.prepare()  # argv, logging, no ~/.kivy files, SDL2 only, the cut style
    from kivy.config import Config

    size = window_size()
    if size is None:
        Config.set("graphics", "show_cursor", "0")
        screen = x11_screen()
        if screen is not None and not screen[2]:
            # No window manager: a borderless window exactly the screen's size at 0,0.
            log.info("pad ui: no window manager; filling the %dx%d screen", *screen[:2])
            Config.set("graphics", "fullscreen", "0")
            Config.set("graphics", "borderless", "1")
            Config.set("graphics", "width", str(screen[0]))
            Config.set("graphics", "height", str(screen[1]))
            Config.set("graphics", "position", "custom")
            Config.set("graphics", "left", "0")
            Config.set("graphics", "top", "0")
            Config.set("graphics", "resizable", "0")
        else:
            Config.set("graphics", "fullscreen", "auto")
    else:
        Config.set("graphics", "fullscreen", "0")
        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
        Config.set("graphics", "resizable", "0")
    Config.set("kivy", "exit_on_escape", "0")  # a keyboard on the pad must not close it
    # Nothing moves by itself and keys come from the core thread: 20 frames a second show a
    # press within 50 ms, and Kivy's loop idles at ~2 % of a core instead of ~5 % at its 60 (on
    # a Pi-class budget, CPU the publish of a press needs; BENCHMARKS.md).
    Config.set("graphics", "maxfps", "20")
    Config.set("input", "mouse", "mouse,disable_multitouch")


def make_root(pad: Any) -> Any:
    """A `PadRoot` wired to `pad.service` (touches in, views out)."""
    from kivy.clock import Clock

    from rating_pad.ui.screens import PadRoot

    service = pad.service
    root = PadRoot(
        on_score=service.touch,
        on_reason=service.choose_reason,
        keypad=pad.keypad is not None,
        default_language=pad.cfg.rating.language,
        on_language=pad.voice.set_language if pad.voice is not None else None,
    )
    service.on_view(lambda view: Clock.schedule_once(lambda _dt: root.show(view)))
    service.refresh()
    if pad.cfg.buttons.driver == "keyboard":
        # through the simulated keypad when there is one, so typing is debounced like keys
        press = getattr(pad.keypad, "press", None) or service.press
        bind_keyboard(press, set(pad.cfg.buttons.keys))
    return root


def bind_keyboard(press: Any, names: set[str]) -> None:
    """`driver = "keyboard"` (demo, bench): a typed character that names a key in
    `[buttons].keys` is that key, so "1".."4", "P" and "S" work on a desktop keyboard."""
    from kivy.core.window import Window

    def on_key_down(
        _win: Any, _key: int, _scancode: int, codepoint: str | None, _modifiers: list[str]
    ) -> bool:
        if not codepoint:
            return False
        for name in (codepoint, codepoint.upper()):
            if name in names:
                press(name)
                return True
        return False

    Window.bind(on_key_down=on_key_down)


def run_ui(pad: Any, life: Any) -> None:
    """Run the screen until the window closes or `life` says stop (SIGTERM)."""
    configure_kivy()
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window

    from terminal import marks

    class PadApp(App):
        title = f"careterm pad {pad.cfg.device.id}"

        def build(self) -> Any:
            Clock.schedule_interval(self._check_stop, 0.25)
            root = make_root(pad)
            marks.frames(Window, lambda: f"pad {root.view.state if root.view else '-'}")
            return root

        def on_start(self) -> None:
            # Start-up is over once the first frames are drawn: terminal.startup_gc.
            Clock.schedule_once(lambda _dt: startup_gc.started(), 2.0)

        def _check_stop(self, _dt: float) -> None:
            if life.stop_event.is_set():
                self.stop()

        def on_stop(self) -> None:
            life.stop_event.set()

    PadApp().run()
