"""The patient at the kiosk now: what they showed and chose, and when they last touched it.
`forget()` drops all of it; nothing about a patient outlives their session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COUNTDOWN_S = 10


@dataclass
class Session:
    idle_timeout_s: float
    last_input: float = 0.0
    card_kind: str = ""
    token: str = ""
    decisions: list[Any] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def touch(self, now: float) -> None:
        self.last_input = now

    def idle_left(self, now: float) -> float:
        """Seconds until the countdown starts (negative once it runs)."""
        return self.idle_timeout_s - (now - self.last_input)

    def countdown(self, now: float) -> int | None:
        """None while active; else whole seconds left of the countdown (0 = time to forget)."""
        left = self.idle_left(now)
        if left > 0:
            return None
        return max(0, int(COUNTDOWN_S + left + 0.999))

    def forget(self, now: float) -> None:
        self.card_kind = ""
        self.token = ""
        self.decisions = []
        self.data = {}
        self.last_input = now
