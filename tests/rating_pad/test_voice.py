"""Voice prompts: the shipped WAVs, the right one per screen and language, volume, on/off."""

from __future__ import annotations

import array
import subprocess
import sys
import wave
from pathlib import Path

from drivers.speaker.sim import SimulatedSpeaker
from rating_pad.machine import PadMachine, Staff
from rating_pad.voice import FAULT, NAMES, SHIPPED, Voice
from terminal.config import parse_config
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def recorder(tmp_path: Path) -> tuple[list[str], Path]:
    played = tmp_path / "played.txt"
    player = tmp_path / "player.py"
    player.write_text(
        "import sys\nopen(sys.argv[1], 'a').write(sys.argv[2].rsplit('/', 1)[1] + '\\n')\n"
    )
    return [sys.executable, str(player), str(played)], played


def machine() -> PadMachine:
    cfg = parse_config({"device": {"id": "p", "role": "rating_pad", "site": "main"}})
    m = PadMachine(cfg)
    m.sign_in(Staff(staff="E1"), 0.0)
    return m


def test_every_prompt_ships_in_chinese_and_english_and_is_up_to_date() -> None:
    for name in (*NAMES.values(), FAULT):
        for lang in ("zh", "en"):
            with wave.open(str(SHIPPED / f"{name}.{lang}.wav")) as w:
                assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
                seconds = w.getnframes() / w.getframerate()
                samples = array.array("h", w.readframes(w.getnframes()))
            assert 0.8 < seconds < 6, (name, lang, seconds)
            assert max(abs(s) for s in samples) > 20000  # normalised, not silence
    assert "请对我的服务进行评价" in (SHIPPED / "phrases.toml").read_text(encoding="utf-8")
    # the committed WAVs were made from the texts in the phrase table (no TTS needed here)
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make-voice"), "--check", "rating_pad"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_voice_plays_each_screen_in_the_patients_language(tmp_path: Path) -> None:
    player, played = recorder(tmp_path)
    m = machine()
    v = Voice(player=player, volume=100)

    def lines() -> list[str]:
        return played.read_text().split() if played.exists() else []

    v.on_view(m.view(0.0))  # idle: no sound
    m.prompt(1.0)
    v.on_view(m.view(1.0))
    wait_for(lambda: lines() == ["prompt.zh.wav"], 10, what="prompt.zh.wav")
    v.on_view(m.view(2.0))  # same screen again: not repeated
    v.set_language("en")  # the patient touched "English"
    m.key("1", 3.0)
    v.on_view(m.view(3.0))
    wait_for(lambda: lines()[-1:] == ["reason.en.wav"], 10, what="reason.en.wav")
    m.key("2", 4.0)
    v.on_view(m.view(4.0))
    wait_for(lambda: lines()[-1:] == ["thanks.en.wav"], 10, what="thanks.en.wav")
    m.tick(10.0)
    v.on_view(m.view(10.0))  # idle: the next patient starts in Chinese again
    view = m.view(11.0)
    view.fault = "storage"
    v.on_view(view)
    wait_for(lambda: lines()[-1:] == ["fault.zh.wav"], 10, what="fault.zh.wav")
    v.close()
    assert lines() == ["prompt.zh.wav", "reason.en.wav", "thanks.en.wav", "fault.zh.wav"]


def test_the_next_patients_prompt_is_spoken_in_the_default_language(tmp_path: Path) -> None:
    """The queue calls the next ticket while the last patient (who chose English) still sees
    "thank you", or a new prompt supersedes one nobody answered: the pad never passes idle,
    yet the new patient hears Chinese. The patient at the window when a prompt opens over
    the idle screen keeps the language chosen there."""
    player, played = recorder(tmp_path)
    m = machine()
    v = Voice(player=player, volume=100)

    def lines() -> list[str]:
        return played.read_text().split() if played.exists() else []

    v.on_view(m.view(0.0))
    v.set_language("en")  # chosen on the idle screen by the patient being served
    m.prompt(1.0)
    v.on_view(m.view(1.0))
    wait_for(lambda: lines() == ["prompt.en.wav"], 10, what="prompt.en.wav")
    m.key("4", 3.0)
    v.on_view(m.view(3.0))
    wait_for(lambda: lines()[-1:] == ["thanks.en.wav"], 10, what="thanks.en.wav")
    m.prompt(4.0)  # the next ticket, during the thank-you screen
    v.on_view(m.view(4.0))
    wait_for(lambda: lines()[-1:] == ["prompt.zh.wav"], 10, what="prompt.zh.wav")
    v.set_language("en")
    m.prompt(6.0)  # superseded: yet another patient
    v.on_view(m.view(6.0))
    wait_for(lambda: len(lines()) == 4, 10, what="a fourth sound")
    v.close()
    assert lines() == ["prompt.en.wav", "thanks.en.wav", "prompt.zh.wav", "prompt.zh.wav"]


def test_a_sites_own_recordings_replace_the_shipped_ones(tmp_path: Path) -> None:
    player, played = recorder(tmp_path)
    own = tmp_path / "own"
    own.mkdir()
    (own / "prompt.wav").write_bytes((SHIPPED / "prompt.zh.wav").read_bytes())
    v = Voice(own, player=player, volume=100)
    assert v.play("prompt") and not v.play("thanks")  # only what the site recorded
    wait_for(lambda: played.exists() and played.read_text().split() == ["prompt.wav"], 10)
    v.close()


def test_the_configured_volume_goes_to_the_speaker() -> None:
    speaker = SimulatedSpeaker()
    v = Voice(speaker=speaker)
    assert v.play("thanks")
    assert [p.clip for p in speaker.played] == ["thanks.zh.wav"]
    real = Voice(volume=60, player=[])  # the real player driver, without a player here
    assert real.speaker is not None and real.speaker.volume == 0.6
    assert real.play("thanks") is False  # no player: silent, never an error


def test_voice_without_files_or_player_is_silent(tmp_path: Path) -> None:
    v = Voice(tmp_path / "missing", player=[])
    assert v.play("prompt") is False
    v2 = Voice(tmp_path, speaker=SimulatedSpeaker())
    assert v2.play("prompt") is False  # an empty folder of its own: nothing to play


def test_voice_off_in_config_starts_no_voice(config_writer) -> None:
    from rating_pad.runner import Pad
    from terminal.config import load_config

    off = config_writer(extra='[buttons]\ndriver = "touch"\n[rating]\nvoice = false\n')
    assert Pad(load_config(off), str(off)).voice is None
    quiet = config_writer(
        "quiet.toml", extra='[buttons]\ndriver = "touch"\n[rating]\nvoice_volume = 0\n'
    )
    assert Pad(load_config(quiet), str(quiet)).voice is None
