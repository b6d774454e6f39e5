"""Speakers: a real child-process player (one clip at a time, volume, never waiting), the simulator, the factory."""

from __future__ import annotations

import os
import sys
import wave
from array import array
from pathlib import Path

import pytest

from drivers.base import DeviceState
from drivers.speaker.factory import SPEAKER_ENV, open_speaker
from drivers.speaker.player import PlayerSpeaker, scale_wav
from drivers.speaker.sim import SimulatedSpeaker
from tests.conftest import wait_for

# A stand-in audio player: records "start <file>", keeps a copy of what it was given, then
# waits for its gate file (the clip "plays" until the test opens the gate or it is stopped).
PLAYER = """
import os, shutil, signal, sys, time
log, copies, gate, clip = sys.argv[1:5]
signal.signal(signal.SIGTERM, lambda *a: (open(log, "a").write("stopped " + os.path.basename(clip) + "\\n"), sys.exit(0)))
open(log, "a").write("start " + os.path.basename(clip) + "\\n")
shutil.copy(clip, os.path.join(copies, os.path.basename(clip)))
while not os.path.exists(gate):
    time.sleep(0.01)
open(log, "a").write("done " + os.path.basename(clip) + "\\n")
"""


def write_wav(path: Path, samples: list[int], width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(8000)
        if width == 2:
            a = array("h", samples)
            if sys.byteorder == "big":
                a.byteswap()
            w.writeframes(a.tobytes())
        else:
            w.writeframes(bytes(samples))
    return path


def read_samples(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
        if w.getsampwidth() == 1:
            return list(raw)
    a = array("h")
    a.frombytes(raw)
    if sys.byteorder == "big":
        a.byteswap()
    return list(a)


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "played.log"
        self.copies = tmp / "copies"
        self.copies.mkdir()
        self.gate = tmp / "gate"
        script = tmp / "player.py"
        script.write_text(PLAYER)
        self.player = [sys.executable, str(script), str(self.log), str(self.copies), str(self.gate)]
        self.clips = tmp / "clips"
        self.clips.mkdir()

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_a_new_clip_stops_the_one_playing_and_play_never_waits(rig: Rig) -> None:
    a = write_wav(rig.clips / "home.wav", [1000] * 80)
    b = write_wav(rig.clips / "list.wav", [2000] * 80)
    s = PlayerSpeaker(rig.player)
    assert s.state == DeviceState.OK
    try:
        assert s.play(a)  # returns while the clip "plays" (the gate is closed)
        wait_for(lambda: rig.lines() == ["start home.wav"], 10, what="first clip started")
        assert s.playing
        assert s.play(b)
        wait_for(lambda: rig.lines()[-1:] == ["start list.wav"], 10, what="second clip")
        assert rig.lines() == ["start home.wav", "stopped home.wav", "start list.wav"]
        rig.gate.touch()
        wait_for(lambda: rig.lines()[-1:] == ["done list.wav"], 10, what="clip ends by itself")
        wait_for(lambda: not s.playing, 10, what="player reaped")
    finally:
        s.close()


def test_stop_and_close_end_the_player(rig: Rig) -> None:
    a = write_wav(rig.clips / "home.wav", [1000] * 80)
    s = PlayerSpeaker(rig.player)
    assert s.play(a)
    wait_for(lambda: rig.lines() == ["start home.wav"], 10)
    s.stop()
    wait_for(lambda: rig.lines()[-1:] == ["stopped home.wav"], 10, what="stop()")
    assert s.play(a)
    wait_for(lambda: rig.lines()[-1:] == ["start home.wav"], 10)
    s.close()
    assert rig.lines()[-1] == "stopped home.wav"
    assert not s.play(a)  # closed


def test_volume_scales_the_samples_and_keeps_the_clip_name(rig: Rig) -> None:
    clip = write_wav(rig.clips / "done.wav", [10000, -10000, 32767, -32768, 0] * 20)
    quiet8 = write_wav(rig.clips / "fault.wav", [128, 228, 28, 255, 0] * 20, width=1)
    s = PlayerSpeaker(rig.player, volume=0.5)
    try:
        assert s.play(clip)
        wait_for(lambda: (rig.copies / "done.wav").exists(), 10)
        assert read_samples(rig.copies / "done.wav")[:5] == [5000, -5000, 16383, -16384, 0]
        assert read_samples(clip)[:5] == [10000, -10000, 32767, -32768, 0]  # original untouched
        s.volume = 0.25
        assert s.play(quiet8)
        wait_for(lambda: (rig.copies / "fault.wav").exists(), 10)
        assert read_samples(rig.copies / "fault.wav")[:5] == [128, 153, 103, 159, 96]
        s.volume = 7  # clamped
        assert s.volume == 1.0
        s.volume = 0
        assert not s.play(clip)  # silent: nothing to start
    finally:
        s.close()


def test_a_clip_that_is_not_pcm_wav_plays_at_its_own_volume(rig: Rig) -> None:
    odd = rig.clips / "home.ogg"
    odd.write_bytes(b"OggS not really")
    s = PlayerSpeaker(rig.player, volume=0.5)
    try:
        assert s.play(odd)
        wait_for(lambda: (rig.copies / "home.ogg").exists(), 10)
        assert (rig.copies / "home.ogg").read_bytes() == b"OggS not really"
    finally:
        s.close()
    assert scale_wav(odd, 0.5, rig.clips / "x.wav") is False


def test_no_player_or_no_file_is_silent(rig: Rig, tmp_path: Path) -> None:
    s = PlayerSpeaker([])
    assert s.state == DeviceState.DISABLED and "no audio player" in s.detail
    assert not s.play(write_wav(rig.clips / "home.wav", [0] * 8))
    s.close()
    s2 = PlayerSpeaker(rig.player)
    assert not s2.play(tmp_path / "missing.wav")
    s2.close()
    s3 = PlayerSpeaker(["/nonexistent/player"])
    assert s3.play(write_wav(rig.clips / "list.wav", [0] * 8))  # accepted; fails on its thread
    wait_for(lambda: s3.state == DeviceState.ERROR, 10, what="player that cannot run")
    s3.close()


def test_simulated_speaker_records_what_was_played(tmp_path: Path) -> None:
    clip = write_wav(tmp_path / "home.wav", [0] * 8)
    s = SimulatedSpeaker(volume=0.8)
    assert s.play(clip) and s.play(str(clip))
    assert [(p.clip, p.volume) for p in s.played] == [("home.wav", 0.8), ("home.wav", 0.8)]
    assert s.playing is s.played[-1]
    s.stop()
    assert s.playing is None
    assert not s.play(tmp_path / "missing.wav")
    s.inject("no_player")
    assert s.state == DeviceState.DISABLED and not s.play(clip)
    s.clear()
    assert s.state == DeviceState.OK and s.play(clip) and len(s.played) == 3
    with pytest.raises(ValueError):
        s.inject("on_fire")


def test_factory_picks_the_speaker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPEAKER_ENV, raising=False)
    monkeypatch.setenv("CARETERM_AUDIO_PLAYER", "true")
    real = open_speaker()
    assert isinstance(real, PlayerSpeaker) and real.player == ["true"]
    monkeypatch.setenv(SPEAKER_ENV, "sim")
    assert isinstance(open_speaker(volume=0.3), SimulatedSpeaker)
    assert open_speaker(volume=0.3).volume == 0.3  # type: ignore[union-attr]
    monkeypatch.setenv(SPEAKER_ENV, "none")
    assert open_speaker() is None
    monkeypatch.setenv(SPEAKER_ENV, "bogus")
    assert isinstance(open_speaker(), PlayerSpeaker)
    assert isinstance(open_speaker("sim"), SimulatedSpeaker)
    with pytest.raises(ValueError):
        open_speaker("bogus")
    assert os.environ["CARETERM_AUDIO_PLAYER"] == "true"


# A player that fails as aplay does without a sound card, while its "broken" file exists.
FAILING_PLAYER = """
import os, sys
broken, log, clip = sys.argv[1:4]
if os.path.exists(broken):
    sys.stderr.write("aplay: main:831: audio open error: No such file or directory\\n")
    sys.exit(1)
open(log, "a").write("played " + os.path.basename(clip) + "\\n")
"""


def test_a_player_that_cannot_reach_the_audio_device_is_a_speaker_fault(
    tmp_path: Path, caplog
) -> None:
    script = tmp_path / "player.py"
    script.write_text(FAILING_PLAYER)
    broken, log = tmp_path / "no-sound-card", tmp_path / "played.log"
    broken.touch()
    clip = write_wav(tmp_path / "home.wav", [0] * 8)
    s = PlayerSpeaker([sys.executable, str(script), str(broken), str(log)])
    try:
        assert s.state == DeviceState.OK
        assert s.play(clip)
        wait_for(lambda: s.state == DeviceState.ERROR, 10, what="the failed clip noticed")
        assert "exited with 1 playing home.wav" in s.detail
        assert "audio open error" in s.detail  # the player's own words for the technician
        assert "aplay -l" in caplog.text
        broken.unlink()  # the sound card is back
        assert s.play(clip)
        wait_for(lambda: s.state == DeviceState.OK, 10, what="a clip played through")
        assert log.read_text() == "played home.wav\n"
    finally:
        s.close()


# A player that ignores SIGTERM: stopping it takes the speaker's thread a while.
STUBBORN_PLAYER = """
import os, signal, sys, time
log, clip = sys.argv[1:3]
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(log, "a").write("start " + os.path.basename(clip) + "\\n")
time.sleep(60)
"""


def test_a_clip_that_vanishes_before_it_plays_does_not_silence_the_speaker(
    tmp_path: Path,
) -> None:
    script = tmp_path / "player.py"
    script.write_text(STUBBORN_PLAYER)
    log = tmp_path / "played.log"
    clips = [write_wav(tmp_path / f"{n}.wav", [1000, -1000] * 8) for n in ("a", "b", "c")]
    s = PlayerSpeaker([sys.executable, str(script), str(log)], volume=0.5)

    def started() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    try:
        assert s.play(clips[0])
        wait_for(lambda: "start a.wav" in started(), 10, what="the first clip")
        # the thread now spends a second or more stopping "a" before it gets to "b"
        assert s.play(clips[1])
        clips[1].unlink()  # an update replaced the voice files meanwhile
        wait_for(lambda: s._request is None, 10, what="the thread taking clip b")
        assert s.play(clips[2])
        wait_for(lambda: "start c.wav" in started(), 15, what="the next clip after the lost one")
        assert s._thread is not None and s._thread.is_alive()
    finally:
        s.close()
