"""Opt-in milestone marks for `bench/pi_budget.py`: with `CARETERM_BENCH_MARKS=<path>` set, the
apps append `<CLOCK_MONOTONIC seconds> <name>` lines to that file when a frame shows something
new. Unset (always, on a device) nothing is bound and nothing is written."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

MARKS_ENV = "CARETERM_BENCH_MARKS"
_path = os.environ.get(MARKS_ENV) or None


def mark(name: str) -> None:
    if _path is None:
        return
    # time.monotonic() is CLOCK_MONOTONIC on Linux: the benchmark compares it with its own.
    with open(_path, "a", encoding="utf-8") as f:
        f.write(f"{time.monotonic():.6f} {name}\n")


def frames(window: Any, showing: Callable[[], str]) -> None:
    """Mark `frame <showing()>` after each Kivy frame (`on_flip`, the frame is on screen) whose
    `showing()` differs from the last marked one: the first frame, then every change of screen."""
    if _path is None:
        return
    last: list[str | None] = [None]

    def flipped(*_: Any) -> None:
        now = showing()
        if now != last[0]:
            last[0] = now
            mark(f"frame {now}")

    window.bind(on_flip=flipped)
