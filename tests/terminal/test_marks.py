"""Benchmark marks: off unless CARETERM_BENCH_MARKS names a file; then one line per new frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from terminal import marks


class FakeWindow:
    def __init__(self) -> None:
        self.bound: list[Any] = []

    def bind(self, on_flip: Any) -> None:
        self.bound.append(on_flip)

    def flip(self) -> None:
        for fn in self.bound:
            fn(self)


def test_without_the_variable_nothing_is_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(marks, "_path", None)
    window = FakeWindow()
    marks.frames(window, lambda: "home")
    assert window.bound == []


def test_each_change_of_screen_is_marked_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "marks"
    monkeypatch.setattr(marks, "_path", str(path))
    window = FakeWindow()
    showing = ["home"]
    marks.frames(window, lambda: showing[0])
    window.flip()
    window.flip()
    showing[0] = "appointments"
    window.flip()
    names = [line.split(" ", 1)[1] for line in path.read_text().splitlines()]
    assert names == ["frame home", "frame appointments"]
    float(path.read_text().split()[0])  # a monotonic timestamp first
