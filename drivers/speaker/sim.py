"""A speaker that plays nothing and remembers what it was asked to play (tests, demo, bench)."""

from __future__ import annotations

import threading
from pathlib import Path

from drivers.speaker.base import Speaker


class SimulatedSpeaker(Speaker):
    def __init__(self) -> None:
        self.played: list[tuple[Path, int]] = []
        self._lock = threading.Lock()

    def play(self, path: Path, volume: int = 100) -> bool:
        with self._lock:
            self.played.append((Path(path), volume))
        return Path(path).is_file()

    @property
    def names(self) -> list[str]:
        with self._lock:
            return [p.stem for p, _ in self.played]
