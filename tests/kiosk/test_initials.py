"""The guide's pinyin initials come from a child process (pypinyin never loaded in the kiosk) and a
file, with the answers pinyin_initial gives in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk import initials as mod
from kiosk.initials import initials, pinyin_initial

NAMES = ["心内科", "重症医学科", "Dermatology", "", "  耳鼻喉科", "1号诊室", "骨科"]


def test_the_child_gives_the_same_initials_and_they_are_kept(tmp_path: Path) -> None:
    cache = tmp_path / "pinyin-initials.json"
    assert initials(NAMES[:2], cache, make=False) == {}  # nothing known, nothing made
    got = initials(NAMES, cache)
    assert got == {n: pinyin_initial(n) for n in NAMES}
    assert got["重症医学科"] == "Z" and got["Dermatology"] == "D" and got[""] == ""
    assert initials(NAMES, cache, make=False) == got  # from the file now


def test_a_file_of_another_pypinyin_version_is_not_trusted(tmp_path: Path) -> None:
    cache = tmp_path / "pinyin-initials.json"
    cache.write_text(json.dumps({"pypinyin": "0.0", "initials": {"心内科": "Q"}}))
    assert initials(["心内科"], cache, make=False) == {}
    assert initials(["心内科"], cache) == {"心内科": "X"}


def test_without_the_child_they_are_made_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mod.sys, "executable", str(tmp_path / "no-python"))
    assert initials(["心内科", "骨科"], None) == {"心内科": "X", "骨科": "G"}
