"""A clock the outbox reads in tests: wall time that can jump, monotonic time, NTP sync state."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeClock:
    wall_s: float = 1_790_000_000.0
    """2026-09: a plausible synced wall clock."""
    mono_s: float = 1000.0
    is_synced: bool = True

    def wall(self) -> float:
        return self.wall_s

    def monotonic(self) -> float:
        return self.mono_s

    def synced(self) -> bool:
        return self.is_synced

    def run(self, seconds: float) -> None:
        """Time passes: both clocks advance together."""
        self.wall_s += seconds
        self.mono_s += seconds

    def jump(self, seconds: float) -> None:
        """The wall clock is set (NTP sync, a technician, a dead RTC battery): only it moves."""
        self.wall_s += seconds
