"""The simulated speaker (`careterm demo`, tests): records what would be heard, plays nothing."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from drivers.base import DeviceState
from drivers.speaker.base import Played, Speaker

log = logging.getLogger("careterm.drivers.speaker.sim")

FAULTS = ("no_player",)


class SimulatedSpeaker(Speaker):
    """`played` lists every clip started, `playing` the one that would be heard now.

    Same rules as the real speaker: a missing file or volume 0 plays nothing; a new clip
    replaces the one playing. `inject("no_player")` behaves like a machine without an audio
    player (state `disabled`, nothing plays) until `clear()`.
    """

    def __init__(self, volume: float = 1.0) -> None:
        super().__init__("speaker", volume)
        self.played: list[Played] = []
        self.playing: Played | None = None
        self.faults: set[str] = set()
        self._set_state(DeviceState.OK, "simulated")

    def play(self, clip: str | Path) -> bool:
        path = Path(clip)
        if self.faults or self.volume <= 0.0 or not path.is_file():
            return False
        p = Played(path.name, path, self.volume, time.monotonic())
        self.played.append(p)
        self.playing = p
        log.info("speaker (simulated): %s at volume %d%%", p.clip, round(p.volume * 100))
        return True

    def stop(self) -> None:
        self.playing = None

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self.faults.add(fault)
        self.playing = None
        self._set_state(DeviceState.DISABLED, "simulated: no audio player")

    def clear(self) -> None:
        self.faults.clear()
        self._set_state(DeviceState.OK, "simulated")
