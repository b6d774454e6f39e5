"""Voice prompts: the right WAV is played (by a real child process) as the screen changes."""

from __future__ import annotations

import sys
from pathlib import Path

from rating_pad.machine import PadMachine, Staff
from rating_pad.voice import Voice
from terminal.config import parse_config
from tests.conftest import wait_for


def test_voice_plays_prompt_reason_thanks_and_fault(tmp_path: Path) -> None:
    played = tmp_path / "played.txt"
    player = tmp_path / "player.py"
    player.write_text(
        "import sys\nopen(sys.argv[1], 'a').write(sys.argv[2].rsplit('/', 1)[1] + '\\n')\n"
    )
    voice_dir = tmp_path / "voice"
    voice_dir.mkdir()
    for name in ("prompt.wav", "reason.wav", "thanks.wav", "fault.wav"):
        (voice_dir / name).write_bytes(b"RIFF")  # the player never decodes it here
    cfg = parse_config(
        {
            "device": {"id": "p", "role": "rating_pad", "site": "main"},
            "rating": {"voice_dir": str(voice_dir)},
        }
    )
    m = PadMachine(cfg)
    m.sign_in(Staff(staff="E1"), 0.0)
    v = Voice(str(voice_dir), player=[sys.executable, str(player), str(played)])

    def lines() -> list[str]:
        return played.read_text().split() if played.exists() else []

    v.on_view(m.view(0.0))  # idle: no sound
    m.prompt(1.0)
    v.on_view(m.view(1.0))
    wait_for(lambda: lines() == ["prompt.wav"], 10, what="prompt.wav")
    v.on_view(m.view(2.0))  # same screen again: not repeated
    m.key("1", 3.0)
    v.on_view(m.view(3.0))
    wait_for(lambda: lines()[-1:] == ["reason.wav"], 10, what="reason.wav")
    m.key("2", 4.0)
    v.on_view(m.view(4.0))
    wait_for(lambda: lines()[-1:] == ["thanks.wav"], 10, what="thanks.wav")
    view = m.view(5.0)
    view.fault = "storage"
    v.on_view(view)
    wait_for(lambda: lines()[-1:] == ["fault.wav"], 10, what="fault.wav")
    v.close()
    assert lines() == ["prompt.wav", "reason.wav", "thanks.wav", "fault.wav"]


def test_voice_without_files_or_player_is_silent(tmp_path: Path) -> None:
    v = Voice(str(tmp_path / "missing"), player=[])
    assert v.play("prompt.wav") is False
    v2 = Voice(str(tmp_path), player=None)
    v2.player = None
    assert v2.play("prompt.wav") is False
