"""Kivy's environment for the screens: the cut style keeps every rule careterm's widgets need,
the folder is made once and whole, and a caller's own settings win."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from terminal import kivy_setup
from tests.conftest import ROOT

SAMPLE = """#:kivy 1.0
#:import Window kivy.core.window.Window

<Label>:
    canvas:
        Color:
            rgba: 1, 1, 1, 1
<-Button,-ToggleButton>:
    state_image: self.background_normal
<Slider>:
    canvas:
        Rectangle:
            pos: self.pos
<ActionPreviousImage@Image>:
    size: 1, 1
<ScrollView>:
    canvas:
        Color:
            rgb: 1, 1, 1
"""


def _rules(text: str) -> set[str]:
    return {line.split(":")[0] for line in text.splitlines() if line.startswith("<")}


def _ruled_classes(text: str) -> set[str]:
    """Every class a rule of this style names (`<A,-B,C@Base>:` names A, B and C)."""
    names = set()
    for head in _rules(text):
        names.update(n.strip().lstrip("-").split("@")[0] for n in head[1:].rstrip(">").split(","))
    return names


def test_cut_style_keeps_the_named_rules_and_the_directives_only():
    cut = kivy_setup.cut_style(SAMPLE)
    assert _rules(cut) == {"<Label>", "<-Button,-ToggleButton>", "<ScrollView>"}
    assert cut.startswith("#:kivy 1.0\n#:import Window kivy.core.window.Window\n")
    assert "Slider" not in cut and "Rectangle" not in cut and "size: 1, 1" not in cut
    assert "state_image: self.background_normal" in cut  # a kept rule's body stays whole
    # `<Alias@Base>` is named by its alias: an Image rule does not keep ActionPreviousImage
    assert "ActionPreviousImage" not in kivy_setup.cut_style(SAMPLE, frozenset({"Image"}))


def _kivy_classes_used() -> set[tuple[str, str]]:
    """(module, name) of every kivy.uix class the kiosk's and the pad's screens import."""
    used = set()
    for folder in (ROOT / "kiosk" / "ui", ROOT / "rating_pad" / "ui"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kivy.uix"):
                    used.update((node.module, a.name) for a in node.names)  # type: ignore[misc]
    return used


def test_every_rule_the_screens_widgets_need_is_kept():
    """For each Kivy widget class the screens use, every class in its MRO that has a rule in
    Kivy's full style.kv has it in the cut one (else a button or a label would draw nothing)."""
    used = sorted(_kivy_classes_used())
    assert ("kivy.uix.label", "Label") in used and ("kivy.uix.scrollview", "ScrollView") in used
    source = kivy_setup.kivy_data_dir()
    assert source is not None
    full = (source / "style.kv").read_text(encoding="utf-8")
    script = f"""
import importlib, json, os
os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_LOG_MODE"] = "PYTHON"
os.environ["KIVY_NO_CONFIG"] = "1"; os.environ["KIVY_NO_FILELOG"] = "1"
names = set()
for module, name in {used!r}:
    cls = getattr(importlib.import_module(module), name)
    names.update(c.__name__ for c in cls.__mro__)
print(json.dumps(sorted(names)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    in_mro = set(json.loads(out.stdout.strip().splitlines()[-1]))
    needed = in_mro & _ruled_classes(full)
    assert needed, "no styled class found: the check would prove nothing"
    assert needed <= kivy_setup.STYLE_RULES, sorted(needed - kivy_setup.STYLE_RULES)
    assert needed <= _ruled_classes(kivy_setup.cut_style(full))
    assert len(kivy_setup.cut_style(full)) < len(full) / 4  # the point of it


def test_the_folder_is_made_once_links_kivys_data_and_survives_a_second_call(tmp_path):
    folder = kivy_setup.styled_data_dir(tmp_path)
    assert folder is not None and folder.parent == tmp_path
    source = kivy_setup.kivy_data_dir()
    assert source is not None
    assert (folder / "style.kv").read_text(encoding="utf-8") == kivy_setup.cut_style(
        (source / "style.kv").read_text(encoding="utf-8")
    )
    assert not (folder / "style.kv").is_symlink()
    for entry in source.iterdir():
        if entry.name != "style.kv":
            assert (folder / entry.name).resolve() == entry.resolve()
    made = (folder / "style.kv").stat().st_mtime_ns
    assert kivy_setup.styled_data_dir(tmp_path) == folder
    assert (folder / "style.kv").stat().st_mtime_ns == made
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no staging folder left


def test_no_writable_cache_means_kivys_own_folder(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert kivy_setup.styled_data_dir(blocked / "cache") is None


def test_prepare_sets_what_is_unset_and_leaves_the_callers_settings(tmp_path, monkeypatch):
    for key in [*kivy_setup.ENV_DEFAULTS, "KIVY_DATA_DIR"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    monkeypatch.setenv("KIVY_IMAGE", "sdl2,pil")  # a technician's own choice
    kivy_setup.prepare()
    assert os.environ["KIVY_IMAGE"] == "sdl2,pil"
    assert os.environ["KIVY_NO_CONFIG"] == "1" and os.environ["KIVY_LOG_MODE"] == "PYTHON"
    assert Path(os.environ["KIVY_DATA_DIR"]).parent == tmp_path / "careterm"
    monkeypatch.setenv("KIVY_DATA_DIR", "/somewhere/else")
    kivy_setup.prepare()
    assert os.environ["KIVY_DATA_DIR"] == "/somewhere/else"


@pytest.mark.display
def test_a_window_draws_with_the_cut_style(tmp_path):
    """A Kivy window with the cut style: a Label and a Button get their canvas (texture and
    background) from the kept rules, and a ScrollView in a RelativeLayout lays out."""
    script = """
import os, sys
from terminal import kivy_setup
kivy_setup.prepare()
assert os.environ["KIVY_DATA_DIR"].startswith(sys.argv[1])
from kivy.base import EventLoop
EventLoop.ensure_window()
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.relativelayout import RelativeLayout
from kivy.uix.scrollview import ScrollView
area = RelativeLayout(); sv = ScrollView(); b = Button(text="OK")
inner = Label(text="x", size_hint_y=None, height=2000); sv.add_widget(inner); area.add_widget(sv)
EventLoop.window.add_widget(area); EventLoop.window.add_widget(b)
for _ in range(5):
    EventLoop.idle()
kinds = [type(i).__name__ for i in b.canvas.children]
assert "BorderImage" in kinds and "Rectangle" in kinds, kinds  # background, then the text
assert b.texture is not None and b.texture.size[0] > 0, "no label texture"
assert sv.bar_width > 0 and inner.height == 2000 and 1 < sv.height < 2000, sv.size
print("drawn")
"""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), KIVY_NO_ARGS="1")
    env.pop("CACHE_DIRECTORY", None)
    env.pop("KIVY_DATA_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0 and "drawn" in out.stdout, out.stderr[-2000:]
