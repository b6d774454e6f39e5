"""The real speaker: a standard audio player (aplay, paplay, pw-play) run as a child process.

`play()` only hands the clip to the speaker's own thread, which stops the clip still playing,
prepares the new one at the set volume and starts the player; the caller (a UI or core
thread) never waits for audio. Volume is applied to the samples (8- and 16-bit PCM WAV,
into a cached copy with the same file name), so it works the same with every player,
including aplay, which has no volume option.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
from array import array
from pathlib import Path
from typing import IO

from drivers.base import DeviceState
from drivers.speaker.base import Speaker

log = logging.getLogger("careterm.drivers.speaker")

PLAYERS = ("aplay", "paplay", "pw-play")
PLAYER_ENV = "CARETERM_AUDIO_PLAYER"
"""A player command line that overrides the search (e.g. `mpv --really-quiet`)."""


def find_player() -> list[str] | None:
    """`$CARETERM_AUDIO_PLAYER` (a command line) or the first of aplay, paplay, pw-play."""
    explicit = os.environ.get(PLAYER_ENV, "").split()
    if explicit:
        return explicit
    for name in PLAYERS:
        exe = shutil.which(name)
        if exe:
            return [exe, "-q"] if name == "aplay" else [exe]
    return None


def scale_wav(src: Path, volume: float, dst: Path) -> bool:
    """Write `src` to `dst` with every sample scaled by `volume` (0..1).

    False (nothing written) when `src` is not an uncompressed 8- or 16-bit PCM WAV file.
    """
    try:
        with wave.open(str(src), "rb") as w:
            params = w.getparams()
            frames = w.readframes(params.nframes)
    except (wave.Error, EOFError, OSError):
        return False
    if params.comptype != "NONE" or params.sampwidth not in (1, 2):
        return False
    if params.sampwidth == 2:
        samples = array("h")
        samples.frombytes(frames[: len(frames) - len(frames) % 2])
        if sys.byteorder == "big":  # WAV samples are little-endian
            samples.byteswap()
        scaled = array("h", (int(s * volume) for s in samples))
        if sys.byteorder == "big":
            scaled.byteswap()
        out = scaled.tobytes()
    else:  # 8-bit WAV is unsigned, silence at 128
        out = bytes(128 + int((b - 128) * volume) for b in frames)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(dst), "wb") as w:
        w.setparams(params)
        w.writeframes(out)
    return True


class PlayerSpeaker(Speaker):
    """One clip at a time through `player` (None: `find_player()`; `[]`: no player, silent)."""

    def __init__(self, player: list[str] | None = None, volume: float = 1.0) -> None:
        super().__init__("speaker", volume)
        self.player = find_player() if player is None else list(player)
        self._cond = threading.Condition()
        self._request: tuple[Path, float] | None = None
        self._stop_requested = False
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._clip = ""  # the file name of the clip `_proc` plays
        self._errors: IO[bytes] | None = None  # what `_proc` says on stderr
        self._exit_failed = False  # the last clip's player exited with an error
        self._thread: threading.Thread | None = None
        self._cache: tempfile.TemporaryDirectory[str] | None = None
        if self.player:
            self._set_state(DeviceState.OK, self.player[0])
        else:
            self._set_state(DeviceState.DISABLED, f"no audio player ({', '.join(PLAYERS)}) found")

    def play(self, clip: str | Path) -> bool:
        path = Path(clip)
        if not self.player or self.volume <= 0.0 or not path.is_file():
            return False
        with self._cond:
            if self._closed:
                return False
            self._request = (path, self.volume)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
                self._thread.start()
        return True

    def stop(self) -> None:
        with self._cond:
            self._request = None
            self._stop_requested = True
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._request = None
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(3.0)
        else:
            self._end_clip()
        if self._cache is not None:
            self._cache.cleanup()

    @property
    def playing(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._stop_requested and not self._closed:
                    # wake up now and then to reap a player that finished by itself
                    self._cond.wait(1.0)
                    if self._proc is not None and self._proc.poll() is not None:
                        self._end_clip()  # finished by itself: how it ended is news
                request, self._request = self._request, None
                self._stop_requested = False
                closed = self._closed
            self._end_clip()
            if closed:
                return
            if request is not None:
                try:
                    self._start(*request)
                except Exception:  # the speaker's thread must outlive any one clip
                    log.exception("speaker: cannot play %s", request[0].name)

    def _start(self, path: Path, volume: float) -> None:
        assert self.player
        source = self._at_volume(path, volume)
        errors: IO[bytes] | None
        try:
            errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _end_clip
        except OSError:  # a full disk: play anyway, without the player's words
            errors = None
        try:
            self._proc = subprocess.Popen(
                [*self.player, str(source)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors if errors is not None else subprocess.DEVNULL,
            )
        except OSError as e:
            if errors is not None:
                errors.close()
            log.warning("speaker: cannot run %s: %s", self.player[0], e)
            self._set_state(DeviceState.ERROR, f"{self.player[0]}: {e.strerror or e}")
            return
        self._clip, self._errors = path.name, errors
        if self.state != DeviceState.OK and not self._exit_failed:
            # it runs again; a player that exited with an error is ok once a clip plays through
            self._set_state(DeviceState.OK, self.player[0])

    def _end_clip(self) -> None:
        proc, self._proc = self._proc, None
        errors, self._errors = self._errors, None
        try:
            if proc is None:
                return
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(1.0)
                return  # stopped by us: says nothing about the player
            self._ended(proc.returncode, errors)
        finally:
            if errors is not None:
                errors.close()

    def _ended(self, code: int, errors: IO[bytes] | None) -> None:
        """A clip's player exited by itself: 0 means the speaker works; anything else (no
        audio device, device busy, a clip it cannot play) is a fault a technician can read."""
        assert self.player
        if code == 0:
            self._exit_failed = False
            if self.state == DeviceState.ERROR:
                self._set_state(DeviceState.OK, self.player[0])
            return
        self._exit_failed = True
        said = ""
        if errors is not None:
            try:
                errors.seek(0)
                said = errors.read(4096).decode("utf-8", "replace").strip().splitlines()[0]
            except (OSError, IndexError):
                said = ""
        why = f"{self.player[0]} exited with {code} playing {self._clip}" + (
            f": {said[:200]}" if said else ""
        )
        log.warning(
            "speaker: %s (no audio device, or it is busy? `aplay -l` lists the devices; "
            "$%s names another player)",
            why,
            PLAYER_ENV,
        )
        self._set_state(DeviceState.ERROR, why)

    def _at_volume(self, path: Path, volume: float) -> Path:
        """The clip as it should sound: itself at full volume, else a scaled copy (cached)."""
        if volume >= 1.0:
            return path
        level = round(volume * 100)
        try:
            if self._cache is None:
                self._cache = tempfile.TemporaryDirectory(prefix="careterm-speaker-")
            key = f"{level:03d}-{abs(hash((str(path.resolve()), path.stat().st_mtime_ns))):x}"
            scaled = Path(self._cache.name) / key / path.name
            if scaled.is_file() or scale_wav(path, level / 100, scaled):
                return scaled
        except OSError as e:  # the clip went away, or the cache cannot be written (disk full)
            log.warning("speaker: %s not scaled to the volume: %s", path.name, e.strerror or e)
            return path
        log.info("speaker: %s is not 8/16-bit PCM WAV; played at its own volume", path.name)
        return path
