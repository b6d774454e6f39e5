"""Optional voice prompts: plays `[rating].voice_dir` WAV files as the pad changes screen."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from rating_pad.machine import PadState, PadView

log = logging.getLogger("careterm.pad")

PLAYERS = ("aplay", "paplay", "pw-play")
FILES = {
    PadState.PROMPTED: "prompt.wav",  # 请您对我的服务做出评价
    PadState.REASON: "reason.wav",  # 请选择不满意的原因
    PadState.THANKS: "thanks.wav",  # 谢谢您的评价
    PadState.PAUSED: "paused.wav",  # 暂停服务
}
FAULT_FILE = "fault.wav"


def find_player() -> list[str] | None:
    """`$CARETERM_AUDIO_PLAYER` (a command line) or the first of aplay, paplay, pw-play."""
    explicit = os.environ.get("CARETERM_AUDIO_PLAYER", "").split()
    if explicit:
        return explicit
    for name in PLAYERS:
        exe = shutil.which(name)
        if exe:
            return [exe, "-q"] if name == "aplay" else [exe]
    return None


class Voice:
    """A view listener; never blocks (the player runs as a child process, one at a time)."""

    def __init__(self, voice_dir: str, player: list[str] | None = None) -> None:
        self.dir = Path(voice_dir)
        self.player = player if player is not None else find_player()
        self._last: tuple[PadState, str | None] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        if not self.dir.is_dir():
            log.warning(
                "voice: [rating].voice_dir %s is not a folder; voice prompts are off", self.dir
            )
        elif self.player is None:
            log.warning(
                "voice: no audio player (%s) found; voice prompts are off", ", ".join(PLAYERS)
            )

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
        if not self.player or not path.is_file():
            return False
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # the new screen's prompt wins
        try:
            self._proc = subprocess.Popen(
                [*self.player, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as e:
            log.warning("voice: cannot run %s: %s", self.player[0], e)
            return False
        return True

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
