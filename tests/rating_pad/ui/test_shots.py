"""Every pad screen renders at 1024x600, 800x480 and 480x320 (one Kivy window per process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import careterm_env

pytestmark = [pytest.mark.display, pytest.mark.slow]

SCREENS = [
    "closed",
    "idle-open",
    "idle",
    "prompt",
    "thanks",
    "reason",
    "paused",
    "fault",
    "idle-free",
    "notice",
    "offline",
]
SHOWN = {
    "notice": "idle-free",
    "idle-open": "idle",
    "offline": "idle",
}  # a notice is a banner over the screen below it


@pytest.mark.parametrize(
    "size,extra",
    [
        ("1024x600", []),
        ("800x480", []),
        ("480x320", []),
        ("1024x600", ["--lang", "en"]),
        ("800x480", ["--lang", "en"]),
        ("480x320", ["--lang", "en", "--five"]),
    ],
)
def test_every_screen_renders_at_size(size: str, extra: list[str], tmp_path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rating_pad.ui.shots",
            "--size",
            size,
            "--out",
            str(tmp_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=careterm_env(KIVY_NO_ARGS="1"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    shots = json.loads(r.stdout.strip().splitlines()[-1])
    assert [s["screen"] for s in shots] == SCREENS
    assert all(s["shown"] == SHOWN.get(s["screen"], s["screen"]) for s in shots), shots
    assert {s["screen"]: s["overflows"] for s in shots if s["overflows"]} == {}
    w, h = (int(x) for x in size.split("x"))
    for s in shots:
        img = Image.open(s["file"]).convert("RGB")
        assert img.size == (w, h)
        # text and faces drawn: many distinct colours, and the header is not the body colour
        assert len(img.getcolors(maxcolors=100_000) or []) > 50, s["file"]
