"""Python's cycle collector paused while a device starts, and its start-up heap frozen after.

Starting a kiosk or a pad makes a few hundred thousand objects that live as long as the process
(modules, classes, pydantic schemas, Kivy's widgets, the roster) and almost no cyclic garbage;
meanwhile the collector walks the growing heap again and again: ~10-20 % of the CPU to the
first frame. `pause()` (`careterm kiosk` / `careterm pad`, first thing) turns it off; `started()`
(the first frame drawn, a headless pad running, or MAX_PAUSE_S at the latest) collects once, moves
what survived into the permanent generation (`gc.freeze`: later collections never walk it
again, which also shortens their pauses on the UI thread) and turns the collector back on.
"""

from __future__ import annotations

import gc
import threading

MAX_PAUSE_S = 60.0

_lock = threading.Lock()
_paused = False


def pause(max_s: float = MAX_PAUSE_S) -> None:
    """Collector off until `started()`, or `max_s` at the latest (whatever happens)."""
    global _paused
    with _lock:
        if _paused or not gc.isenabled():
            return
        gc.disable()
        _paused = True
    timer = threading.Timer(max_s, started)
    timer.daemon = True
    timer.start()


def started() -> None:
    """Start-up is over: collect once, freeze what is left, collector on (once; any thread)."""
    if _unpause():
        gc.collect()
        gc.freeze()
        gc.enable()


def resume() -> None:
    """Collector on as it was (a command that ends before its device is up: nothing frozen)."""
    if _unpause():
        gc.enable()


def _unpause() -> bool:
    global _paused
    with _lock:
        was, _paused = _paused, False
    return was
