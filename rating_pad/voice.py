"""Voice prompts: plays `<name>.<lang>.wav` as the pad changes screen, in the patient's language.

The prompts ship in `rating_pad/audio/` (made offline by `scripts/make-voice`);
`[rating].voice_dir` replaces them with a site's own recordings. `[rating].voice` turns them
off, `[rating].voice_volume` scales them (copies are made once, at start, in the data dir).
A standard player (`aplay`, `paplay`, `pw-play`, or `$CARETERM_AUDIO_PLAYER`) plays them as a
child process, one at a time, started from a thread of its own; the pad never waits for it.
"""

from __future__ import annotations

import array
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import wave
from pathlib import Path

from rating_pad.machine import PadState, PadView

log = logging.getLogger("careterm.pad")

SHIPPED = Path(__file__).resolve().parent / "audio"
PLAYERS = ("aplay", "paplay", "pw-play")
NAMES = {
    PadState.PROMPTED: "prompt",  # 请对我的服务进行评价
    PadState.REASON: "reason",  # 请告诉我们不满意的原因
    PadState.THANKS: "thanks",  # 谢谢您的评价
    PadState.PAUSED: "paused",  # 暂停服务,请稍候
}
FAULT = "fault"


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


def scaled(src: Path, dst: Path, volume: int) -> Path:
    """`src` with its samples scaled to `volume` percent (16-bit PCM), written once to `dst`;
    `src` itself at 100 % or when it is not 16-bit PCM."""
    if volume >= 100:
        return src
    try:
        if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
            return dst
        with wave.open(str(src)) as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
        if params.sampwidth != 2:
            return src
        samples = array.array("h", frames)
        if sys.byteorder == "big":
            samples.byteswap()
        k = volume / 100
        samples = array.array("h", (int(s * k) for s in samples))
        if sys.byteorder == "big":
            samples.byteswap()
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setparams(params)
            w.writeframes(samples.tobytes())
        os.replace(tmp, dst)
        return dst
    except (OSError, wave.Error, EOFError) as e:
        log.warning("voice: cannot scale %s to %d%%: %s; played as recorded", src, volume, e)
        return src


class Voice:
    """A view listener; never blocks (the player runs as a child process, one at a time)."""

    def __init__(
        self,
        voice_dir: str | Path = "",
        *,
        language: str = "zh",
        volume: int = 100,
        cache_dir: Path | None = None,
        player: list[str] | None = None,
    ) -> None:
        self.dir = Path(voice_dir) if voice_dir else SHIPPED
        self.default_language = language
        self.language = language
        """The patient's language (the screen sets it; back to the default at idle)."""
        self.volume = volume
        self.cache_dir = cache_dir
        self.player = player if player is not None else find_player()
        self._last: tuple[PadState, str | None] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._files: dict[tuple[str, str], Path] = {}
        if not self.dir.is_dir():
            log.warning("voice: %s is not a folder; voice prompts are off", self.dir)
        elif self.player is None:
            log.warning(
                "voice: no audio player (%s) found; voice prompts are off", ", ".join(PLAYERS)
            )
        else:
            self._prepare()

    def _prepare(self) -> None:
        """Find (and scale to the volume) every prompt once, so playing never reads a WAV."""
        for name in (*NAMES.values(), FAULT):
            for lang in ("zh", "en"):
                src = self.file(name, lang)
                if src is None:
                    continue
                dst = (self.cache_dir or self.dir) / f"voice-{self.volume}" / src.name
                self._files[(name, lang)] = scaled(src, dst, self.volume)

    def file(self, name: str, lang: str) -> Path | None:
        """`<name>.<lang>.wav`, else `<name>.wav` (a site's recordings in one language)."""
        for candidate in (self.dir / f"{name}.{lang}.wav", self.dir / f"{name}.wav"):
            if candidate.is_file():
                return candidate
        return None

    def set_language(self, lang: str) -> None:
        self.language = lang

    def on_view(self, view: PadView) -> None:
        now = (view.state, view.fault)
        if now == self._last:
            return
        before, self._last = self._last, now
        if view.state in (PadState.IDLE, PadState.CLOSED, PadState.PAUSED):
            self.language = self.default_language  # the next patient starts in the default
        if view.fault and (before is None or before[1] != view.fault):
            self.play(FAULT)
        elif not view.fault and (before is None or before[0] != view.state):
            name = NAMES.get(view.state)
            if name:
                self.play(name)

    def play(self, name: str) -> bool:
        """Start playing `name` (in the patient's language) on the voice thread; False when
        there is nothing to play. Returns at once: fork and exec never run on the caller's
        (the pad's core) thread."""
        path = self._files.get((name, self.language)) or self._files.get(
            (name, self.default_language)
        )
        if not self.player or path is None:
            return False
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pad-voice", daemon=True)
                self._thread.start()
        self._queue.put(path)
        return True

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            while not self._queue.empty():  # only the newest screen's prompt matters
                newer = self._queue.get()
                if newer is None:
                    return
                path = newer
            self._spawn(path)

    def _spawn(self, path: Path) -> None:
        assert self.player is not None
        with self._lock:
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

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(2)
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(2)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
