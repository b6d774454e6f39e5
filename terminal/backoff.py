"""Retry delays: one exponential back-off with jitter for every reconnect and retry loop."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays `first`, `2*first`, ... capped at `cap` seconds, each scaled by a random factor
    in [`jitter`, 1] so that a fleet does not retry in step. `reset()` after a success."""

    first: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    failures: int = 0

    def next(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        self.failures += 1
        base = min(self.cap, self.first * 2 ** min(self.failures - 1, 30))
        return base * random.uniform(self.jitter, 1.0)

    def reset(self) -> None:
        self.failures = 0
