"""Server-side state of the console's log-ins: which sessions are live, and who failed to log in.

The session cookie is signed but otherwise stateless, so it cannot be taken back by itself:
a copy of it would stay valid after logout until it expires. Each log-in therefore gets a
random session id, kept here while the session is live; logout removes it, and a cookie
whose id is not here is refused. Both live in memory: restarting the console ends every
session (everybody logs in again), which errs on the safe side.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

MAX_TRACKED = 10_000  # live sessions, and names or addresses with recent failures
FREE_FAILURES = 5  # failed log-ins allowed before a lock-out
FIRST_LOCK_S = 30.0  # the first lock-out; each further failure doubles it
MAX_LOCK_S = 900.0
FORGET_S = 900.0  # failures this old are forgotten


class LiveSessions:
    """The sessions that are logged in: session id -> (user name, time of its last request).
    A session ends after `max_age_s` without a request, as its cookie does (an open page
    keeps it alive)."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._live: dict[str, tuple[str, float]] = {}

    def start(self, user: str) -> str:
        now = time.time()
        if len(self._live) >= MAX_TRACKED:
            self._prune(now)
        sid = secrets.token_urlsafe(32)
        self._live[sid] = (user, now)
        return sid

    def alive(self, sid: object, user: str) -> bool:
        if not isinstance(sid, str):
            return False
        entry, now = self._live.get(sid), time.time()
        if entry is None or entry[0] != user or now - entry[1] >= self.max_age_s:
            return False
        self._live[sid] = (user, now)
        return True

    def end(self, sid: object) -> None:
        if isinstance(sid, str):
            self._live.pop(sid, None)

    def _prune(self, now: float) -> None:
        """Drop expired sessions; if that is not enough, the oldest ones (they log in again)."""
        live = {k: v for k, v in self._live.items() if now - v[1] < self.max_age_s}
        if len(live) >= MAX_TRACKED:
            newest = sorted(live.items(), key=lambda kv: kv[1][1])[len(live) // 10 :]
            live = dict(newest)
        self._live = live


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0
    in_flight: int = 0


class LoginThrottle:
    """Failed log-ins per user name and per client address. After FREE_FAILURES failures
    the name (or address) is locked out for FIRST_LOCK_S, doubling with each further failure
    up to MAX_LOCK_S; a refused attempt is answered at once. Attempts still being checked
    count as failures until they are decided, so parallel requests cannot get more guesses
    than sequential ones: `admit` and its reservation happen without an await between them."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], _Failures] = {}

    def admit(self, name: str, addr: str) -> float:
        """0 and a reservation to pass to `done`, or how many seconds the caller must wait."""
        now = time.time()
        keys = _keys(name, addr)
        wait = max(self._wait(k, now) for k in keys)
        if wait > 0:
            return wait
        for k in keys:
            self._get(k, now).in_flight += 1
        return 0.0

    def done(self, name: str, addr: str, ok: bool) -> None:
        now = time.time()
        for k in _keys(name, addr):
            f = self._get(k, now)
            f.in_flight = max(0, f.in_flight - 1)
            if ok and k[0] == "user":
                # Only the name is cleared: one's own good password must not reset the
                # address's count for guesses at other names.
                f.count, f.locked_until = 0, 0.0
            elif not ok:
                f.count += 1
                f.last = now
                if f.count >= FREE_FAILURES:
                    lock = FIRST_LOCK_S * 2 ** (f.count - FREE_FAILURES)
                    f.locked_until = now + min(MAX_LOCK_S, lock)

    def _wait(self, key: tuple[str, str], now: float) -> float:
        f = self._by_key.get(key)
        if f is None:
            return 0.0
        if now - f.last > FORGET_S and f.in_flight == 0:
            del self._by_key[key]
            return 0.0
        if f.locked_until > now:
            return f.locked_until - now
        if f.in_flight >= max(1, FREE_FAILURES - f.count):
            return 1.0  # as many guesses in flight as are left: wait for their answers
        return 0.0

    def _get(self, key: tuple[str, str], now: float) -> _Failures:
        f = self._by_key.get(key)
        if f is None:
            if len(self._by_key) >= MAX_TRACKED:
                self._prune(now)
            f = self._by_key[key] = _Failures(last=now)
        return f

    def _prune(self, now: float) -> None:
        self._by_key = {
            k: f
            for k, f in self._by_key.items()
            if f.in_flight or f.locked_until > now or now - f.last <= FORGET_S
        }


def _keys(name: str, addr: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("user", name.casefold()), ("addr", addr)
