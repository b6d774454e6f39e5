"""Wall-clock helpers: ISO timestamps with the local offset, and whether NTP has synced the clock."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from datetime import datetime

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5
_CACHE_S = 30.0


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: only the leading fields matter; the padding covers the rest.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


_lock = threading.Lock()
_cached: tuple[float, bool] | None = None


def _kernel_says_synced() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    tx = _Timex()
    rc = libc.adjtimex(ctypes.byref(tx))
    if rc < 0:
        return False
    return rc != _TIME_ERROR and not (tx.status & _STA_UNSYNC)


def clock_synced() -> bool:
    """True when the kernel reports the clock NTP-synchronised (a Pi has no RTC).

    `CARETERM_CLOCK_SYNCED=1|0` overrides, for machines whose sync the kernel cannot see.
    """
    forced = os.environ.get("CARETERM_CLOCK_SYNCED")
    if forced in ("0", "1"):
        return forced == "1"
    global _cached
    now = time.monotonic()
    with _lock:
        if _cached and now - _cached[0] < _CACHE_S:
            return _cached[1]
        try:
            synced = _kernel_says_synced()
        except (OSError, AttributeError):
            synced = False
        _cached = (now, synced)
        return synced


def now_iso(ts: float | None = None) -> str:
    """`2026-11-23T09:41:12.345+08:00`: milliseconds and the device's local offset."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts).astimezone()
    return dt.isoformat(timespec="milliseconds")
