"""What Kivy reads from the environment, set before it is first imported (the kiosk and the pad).

Kivy decides most of its start-up from environment variables read once, at its first import.
`prepare()` sets those careterm relies on, each only where the caller left it unset:

- `KIVY_NO_ARGS`: careterm's command line is not Kivy's.
- `KIVY_LOG_MODE=PYTHON`, `KIVY_NO_FILELOG`: Kivy's records go through careterm's logging (one
  line each on stderr, which journald keeps); no second console handler, no log files piling up
  under `~/.kivy/logs`.
- `KIVY_NO_CONFIG`: Kivy neither reads nor writes `~/.kivy/config.ini`; a terminal's settings
  come from its careterm configuration alone (the apps set Kivy's `Config` in memory).
- `KIVY_WINDOW=sdl2`, `KIVY_IMAGE=sdl2`: the one window provider (X11, Wayland, KMS/DRM) and the
  one image loader the screens use (PNG QR codes, JPEG staff photos, the PNG or JPEG logo);
  Kivy would otherwise import and probe five image libraries at start.
- `KIVY_DATA_DIR`: Kivy's own data folder, linked entry by entry, except `style.kv`, cut to the
  rules of the widgets careterm draws (`STYLE_RULES`). Kivy parses the whole 1,340-line file and
  compiles every rule's expressions at import: ~50 ms here, half a second on a Pi-class CPU
  budget (BENCHMARKS.md). The folder lives in the user's cache, named after a digest of Kivy's
  file and the rule list, so an upgraded Kivy gets a new one; when it cannot be made, Kivy's own
  folder is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

from terminal.cache_dir import cache_root

log = logging.getLogger("careterm.ui")

STYLE_RULES = frozenset(
    {
        "Label",
        "Button",
        "ToggleButton",
        "Image",
        "AsyncImage",
        "RelativeLayout",
        "StencilView",  # kivy.uix.scrollview.ScrollView
        "ScrollView",
    }
)
"""Classes whose rules in Kivy's style.kv careterm's widgets need (they are these, or derive from
them); tests/terminal/test_kivy_setup.py checks every Kivy class the screens use against it."""

ENV_DEFAULTS = {
    "KIVY_NO_ARGS": "1",
    "KIVY_LOG_MODE": "PYTHON",
    "KIVY_NO_FILELOG": "1",
    "KIVY_NO_CONFIG": "1",
    "KIVY_WINDOW": "sdl2",
    "KIVY_IMAGE": "sdl2",
}


def prepare() -> None:
    """Set Kivy's environment (see the module's text). Call before anything imports kivy."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "KIVY_DATA_DIR" not in os.environ:
        folder = styled_data_dir()
        if folder is not None:
            os.environ["KIVY_DATA_DIR"] = str(folder)


def kivy_data_dir() -> Path | None:
    """Kivy's own `data` folder, found without importing Kivy."""
    spec = find_spec("kivy")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if (folder / "style.kv").is_file() else None


def cut_style(text: str, keep: frozenset[str] = STYLE_RULES) -> str:
    """Kivy's style.kv with only the rules naming a class in `keep` (and its `#:` directives).

    A rule starts at column 0 with `<Name>:` or `<A,-B,C@Base>:` and runs to the next one; the
    lines between two rules belong to the first."""
    out: list[str] = []
    keeping = True  # the directives and comments before the first rule
    for line in text.splitlines(keepends=True):
        if line.startswith("<"):
            head = line.strip().rstrip(":").strip()
            names = {n.strip().lstrip("-").split("@")[0] for n in head[1:-1].split(",")}
            keeping = bool(names & keep)
        elif line.startswith("#:"):
            out.append(line)
            continue
        if keeping:
            out.append(line)
    return "".join(out)


def styled_data_dir(root: Path | None = None) -> Path | None:
    """The cut data folder in the cache (made once per Kivy style and rule list), or None."""
    source = kivy_data_dir()
    base = root if root is not None else cache_root()
    if source is None or base is None:
        return None
    try:
        original = (source / "style.kv").read_text(encoding="utf-8")
    except OSError:
        return None
    digest = hashlib.sha256(
        (original + "\0" + ",".join(sorted(STYLE_RULES)) + "\0" + str(source)).encode()
    ).hexdigest()[:16]
    folder = base / f"kivy-data-{digest}"
    if (folder / "style.kv").is_file():
        return folder
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".kivy-data-", dir=base))
        try:
            for entry in source.iterdir():
                if entry.name != "style.kv":
                    (staging / entry.name).symlink_to(entry)
            (staging / "style.kv").write_text(cut_style(original), encoding="utf-8")
            os.replace(staging, folder)  # whole or not at all; another process may have won
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as e:
        if (folder / "style.kv").is_file():
            return folder  # made by a process starting beside this one
        log.info("Kivy's full style is used (no cut copy in %s: %s)", base, e)
        return None
    return folder
