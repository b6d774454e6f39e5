"""One repeat filter: tells a fresh input from the same input again too soon (bounce, auto-repeat,
a scanner's double send, a stuck key), and how long a run of repeats has lasted."""

from __future__ import annotations

from collections.abc import Hashable


class RepeatFilter:
    """`fresh(key, t)` is False for `key` seen again less than `window` seconds after it was
    last seen. Every input seen restarts its key's window, accepted or not, so a bouncing or
    auto-repeating key never passes twice until it pauses for `window`.

    `per_key=True`: each key keeps its own clock (a keypad's debounce: another key between
    two bounces does not let the second through). `per_key=False`: only the previous input
    counts, so anything else in between makes the next one fresh (a scanner's double send,
    a key that keeps repeating with nothing between).

    `run_started(key)`: when the current run of repeats of `key` began (its last fresh input),
    for stuck-key checks. Times are seconds on any clock that does not go backwards; an input
    stamped earlier than the last one is fresh.
    """

    def __init__(self, window: float, *, per_key: bool = True) -> None:
        self.window = window
        self.per_key = per_key
        self._last: dict[Hashable, float] = {}
        self._run: dict[Hashable, float] = {}

    def fresh(self, key: Hashable, t: float, window: float | None = None) -> bool:
        w = self.window if window is None else window
        last = self._last.get(key)
        if not self.per_key:
            self._last.clear()
        self._last[key] = t
        repeat = last is not None and 0 <= t - last < w
        if not repeat:
            if not self.per_key:
                self._run.clear()
            self._run[key] = t
        return not repeat

    def run_started(self, key: Hashable) -> float | None:
        return self._run.get(key)

    def forget(self) -> None:
        self._last.clear()
        self._run.clear()
