"""Voice prompts: the right `<sound>.<lang>.wav` for each screen, in the patient's language,
played through the speaker driver.

The prompts ship in `rating_pad/audio/` (made offline by `scripts/make-voice`);
`[rating].voice_dir` replaces them with a site's own recordings. `[rating].voice` turns them
off and `[rating].voice_volume` sets the speaker's volume. `drivers.speaker` plays them: a
standard player (`aplay`, `paplay`, `pw-play`, or `$CARETERM_AUDIO_PLAYER`) as a child
process from its own thread, one clip at a time, or the simulated speaker under
`careterm demo`; the pad never waits for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from drivers.speaker.base import Speaker
from drivers.speaker.factory import open_speaker
from drivers.speaker.player import PLAYERS, PlayerSpeaker
from rating_pad.machine import PadState, PadView, next_patient

log = logging.getLogger("careterm.pad")

SHIPPED = Path(__file__).resolve().parent / "audio"
NAMES = {
    PadState.PROMPTED: "prompt",  # 请对我的服务进行评价
    PadState.REASON: "reason",  # 请告诉我们不满意的原因
    PadState.THANKS: "thanks",  # 谢谢您的评价
    PadState.PAUSED: "paused",  # 暂停服务,请稍候
}
FAULT = "fault"


class Voice:
    """A view listener; never blocks (the speaker driver plays one clip at a time).

    `speaker` defaults to `drivers.speaker.factory.open_speaker()` at `volume` (percent): the
    real player, or the simulated one under `careterm demo`; `player` is a player command line
    for the real one.
    """

    def __init__(
        self,
        voice_dir: str | Path = "",
        *,
        language: str = "zh",
        volume: int = 100,
        player: list[str] | None = None,
        speaker: Speaker | None = None,
    ) -> None:
        self.dir = Path(voice_dir) if voice_dir else SHIPPED
        self.default_language = language
        self.language = language
        """The patient's language (the screen sets it; back to the default at idle)."""
        if speaker is None:
            level = max(0, min(100, volume)) / 100
            speaker = (
                PlayerSpeaker(player, level) if player is not None else open_speaker(volume=level)
            )
        self.speaker: Speaker | None = speaker
        self._last: PadView | None = None
        if not self.dir.is_dir():
            log.warning("voice: %s is not a folder; voice prompts are off", self.dir)
        elif isinstance(self.speaker, PlayerSpeaker) and not self.speaker.player:
            log.warning(
                "voice: no audio player (%s) found; voice prompts are off", ", ".join(PLAYERS)
            )

    def file(self, name: str, lang: str) -> Path | None:
        """`<name>.<lang>.wav`, else `<name>.wav` (a site's recordings in one language)."""
        for candidate in (self.dir / f"{name}.{lang}.wav", self.dir / f"{name}.wav"):
            if candidate.is_file():
                return candidate
        return None

    def set_language(self, lang: str) -> None:
        self.language = lang

    def on_view(self, view: PadView) -> None:
        before = self._last
        if before is not None and (before.state, before.fault, before.prompt) == (
            view.state,
            view.fault,
            view.prompt,
        ):
            return
        self._last = view
        if before is not None and next_patient(before, view):
            self.language = self.default_language  # the next patient starts in the default
        if view.fault and (before is None or before.fault != view.fault):
            self.play(FAULT)
        elif not view.fault and (
            before is None or before.state != view.state or before.prompt != view.prompt
        ):
            name = NAMES.get(view.state)
            if name:
                self.play(name)

    def play(self, name: str) -> bool:
        """Start `name` in the patient's language (else the default one); returns at once."""
        path = self.file(name, self.language) or self.file(name, self.default_language)
        if self.speaker is None or path is None:
            return False
        return self.speaker.play(path)

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()
