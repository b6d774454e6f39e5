"""The speaker interface: play one short clip at a time, never blocking the caller."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from drivers.base import Watchable


@dataclass(frozen=True)
class Played:
    """One clip handed to a speaker (what `SimulatedSpeaker.played` records)."""

    clip: str
    """The clip's file name (`prompt.wav`), never a folder that could name a site."""
    path: Path
    volume: float
    t: float
    """Monotonic time it started."""


class Speaker(Watchable, ABC):
    """`play()` returns at once; a new clip stops the one still playing (the newest screen wins).

    `volume` is 0.0 (silent) to 1.0 (the clip as recorded). State: `ok` when clips can be
    played, `disabled` when no audio player exists (prompts are then silently skipped).
    """

    def __init__(self, name: str = "speaker", volume: float = 1.0) -> None:
        super().__init__(name)
        self._volume = clamp_volume(volume)

    @property
    def volume(self) -> float:
        return self._volume

    @volume.setter
    def volume(self, value: float) -> None:
        self._volume = clamp_volume(value)

    @abstractmethod
    def play(self, clip: str | Path) -> bool:
        """Start playing `clip` (a file); False when it cannot be heard (no file, no player,
        volume 0). Returns without waiting for the sound."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the clip that is playing, if any."""

    def close(self) -> None:
        self.stop()


def clamp_volume(value: float) -> float:
    return max(0.0, min(1.0, float(value)))
