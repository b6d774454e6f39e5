"""A speaker through a standard command-line player (aplay, paplay or pw-play).

The volume is applied to the samples here (16-bit PCM WAV), so every player plays the same
loudness; scaled copies are cached per (file, volume)."""

from __future__ import annotations

import array
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from drivers.speaker.base import Speaker

log = logging.getLogger("careterm.drivers.speaker")

PLAYERS = ("aplay", "paplay", "pw-play")


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


def scaled_wav(src: Path, volume: int, cache: Path) -> Path:
    """`src` with its samples scaled to `volume` percent (the file itself at 100)."""
    if volume >= 100:
        return src
    out = cache / f"{src.parent.name}-{src.stem}-v{volume}.wav"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    with wave.open(str(src), "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    if params.sampwidth != 2:
        return src  # only 16-bit PCM is scaled; others play as they are
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    f = max(0, volume) / 100.0
    samples = array.array("h", (int(s * f) for s in samples))
    if sys.byteorder == "big":
        samples.byteswap()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setparams(params)
        w.writeframes(samples.tobytes())
    os.replace(tmp, out)
    return out


class CommandSpeaker(Speaker):
    """Runs the player as a child process, one at a time; never blocks."""

    def __init__(self, player: list[str] | None = None, cache: Path | None = None) -> None:
        self.player = player if player is not None else find_player()
        self.cache = cache or Path(tempfile.gettempdir()) / "careterm-voice"
        self._proc: subprocess.Popen[bytes] | None = None
        if self.player is None:
            log.warning(
                "speaker: no audio player (%s) found; prompts are silent", ", ".join(PLAYERS)
            )

    def play(self, path: Path, volume: int = 100) -> bool:
        path = Path(path)
        if not self.player or not path.is_file() or volume <= 0:
            return False
        try:
            target = scaled_wav(path, volume, self.cache)
        except (OSError, wave.Error, EOFError) as e:
            log.warning("speaker: %s: %s", path, e)
            return False
        self.stop()  # the new screen's prompt wins
        try:
            self._proc = subprocess.Popen(
                [*self.player, str(target)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as e:
            log.warning("speaker: cannot run %s: %s", self.player[0], e)
            return False
        return True

    def stop(self) -> None:
        p = self._proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(1)
            except subprocess.TimeoutExpired:
                p.kill()
