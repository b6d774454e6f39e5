"""The speaker interface shared by the kiosk and the rating pad."""

from __future__ import annotations

import abc
from pathlib import Path


class Speaker(abc.ABC):
    """Plays one prompt at a time: a new prompt cuts the one still playing."""

    @abc.abstractmethod
    def play(self, path: Path, volume: int = 100) -> bool:
        """Start playing the WAV file `path` at `volume` percent; False if it cannot."""

    def stop(self) -> None:  # noqa: B027 - optional: most speakers stop when the next plays
        """Stop whatever is playing."""

    def close(self) -> None:
        self.stop()
