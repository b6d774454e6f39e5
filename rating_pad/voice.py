"""Optional voice prompts: plays `[rating].voice_dir` WAV files as the pad changes screen."""

from __future__ import annotations

import logging
from pathlib import Path

from drivers.speaker.base import Speaker
from drivers.speaker.factory import open_speaker
from drivers.speaker.player import PLAYERS, PlayerSpeaker, find_player
from rating_pad.machine import PadState, PadView

log = logging.getLogger("careterm.pad")

__all__ = ["FILES", "FAULT_FILE", "PLAYERS", "Voice", "find_player"]

FILES = {
    PadState.PROMPTED: "prompt.wav",  # 请您对我的服务做出评价
    PadState.REASON: "reason.wav",  # 请选择不满意的原因
    PadState.THANKS: "thanks.wav",  # 谢谢您的评价
    PadState.PAUSED: "paused.wav",  # 暂停服务
}
FAULT_FILE = "fault.wav"


class Voice:
    """A view listener; never blocks (the speaker driver plays one clip at a time).

    `speaker` defaults to `drivers.speaker.factory.open_speaker()` (the real player, or the
    simulated one under `careterm demo`); `player` is a player command line for the real one.
    """

    def __init__(
        self, voice_dir: str, player: list[str] | None = None, speaker: Speaker | None = None
    ) -> None:
        self.dir = Path(voice_dir)
        if speaker is None:
            speaker = PlayerSpeaker(player) if player is not None else open_speaker()
        self.speaker: Speaker | None = speaker
        self._last: tuple[PadState, str | None] | None = None
        if not self.dir.is_dir():
            log.warning(
                "voice: [rating].voice_dir %s is not a folder; voice prompts are off", self.dir
            )
        elif self.player is None:
            log.warning(
                "voice: no audio player (%s) found; voice prompts are off", ", ".join(PLAYERS)
            )

    @property
    def player(self) -> list[str] | None:
        """The real speaker's player command line (None when there is none)."""
        if isinstance(self.speaker, PlayerSpeaker):
            return self.speaker.player or None
        return ["simulated"] if self.speaker is not None else None

    @player.setter
    def player(self, value: list[str] | None) -> None:
        if isinstance(self.speaker, PlayerSpeaker):
            self.speaker.player = list(value or [])

    def on_view(self, view: PadView) -> None:
        now = (view.state, view.fault)
        if now == self._last:
            return
        before, self._last = self._last, now
        if view.fault and (before is None or before[1] != view.fault):
            self.play(FAULT_FILE)
        elif not view.fault and (before is None or before[0] != view.state):
            name = FILES.get(view.state)
            if name:
                self.play(name)

    def play(self, name: str) -> bool:
        path = self.dir / name
        if self.speaker is None or not path.is_file():
            return False
        return self.speaker.play(path)

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()
