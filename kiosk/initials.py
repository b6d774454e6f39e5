"""Pinyin initials of department names (the guide's A-Z), made outside the kiosk's process.

pypinyin holds ~56 MB of dictionaries once imported and costs ~0.25 s of CPU to import on a
desktop (seconds on a Pi-class kiosk): more than all the rest of the kiosk's Python data, for the
initials of a dozen names. So `initials()` asks a short-lived `python -m kiosk.initials` for the
names it does not know yet and remembers the answers in a file of data_dir (keyed by pypinyin's
version); the kiosk process itself imports pypinyin only if that child fails.

    python -m kiosk.initials  < ["心内科", "重症医学科"]  -> {"心内科": "X", "重症医学科": "Z"}
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

log = logging.getLogger("careterm.kiosk")

CHILD_TIMEOUT_S = 60.0


def pinyin_initial(text: str) -> str:
    """Upper-case first letter of the pinyin of `text` (polyphones resolved by pypinyin's phrases:
    重症医学科 -> Z); an ASCII first character is its own initial."""
    text = text.strip()
    if not text:
        return ""
    if text[0].isascii():
        return text[0].upper() if text[0].isalpha() else ""
    from pypinyin import Style, lazy_pinyin  # (in the child process; see the module's doc)

    letters = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="ignore")
    return letters[0][:1].upper() if letters and letters[0] else ""


def _needs_pinyin(name: str) -> bool:
    text = name.strip()
    return bool(text) and not text[0].isascii()


def _version() -> str:
    try:
        return metadata.version("pypinyin")
    except metadata.PackageNotFoundError:
        return ""


def initials(
    names: Iterable[str], cache: Path | None = None, *, make: bool = True
) -> dict[str, str]:
    """name -> `pinyin_initial(name)` for every name, the same answers, without pypinyin here;
    `make=False`: only the names the cache (or ASCII) answers, nothing is made."""
    names = list(dict.fromkeys(names))
    version = _version()
    known: dict[str, str] = {}
    if cache is not None:
        try:
            doc = json.loads(cache.read_bytes())
            if doc.get("pypinyin") == version and isinstance(doc.get("initials"), dict):
                known = {str(k): str(v) for k, v in doc["initials"].items()}
        except (OSError, ValueError, AttributeError):
            pass
    todo = [n for n in names if _needs_pinyin(n) and n not in known]
    if not make:
        return {n: known[n] if n in known else pinyin_initial(n) for n in names if n not in todo}
    if todo:
        made = _from_child(todo)
        if made is None:
            made = {n: pinyin_initial(n) for n in todo}
        known.update(made)
        if cache is not None:
            from kiosk.files import write_json_durably

            try:
                write_json_durably(cache, {"pypinyin": version, "initials": known})
            except OSError as e:
                log.warning("%s: pinyin initials not kept: %s", cache, e)
    return {n: known[n] if _needs_pinyin(n) else pinyin_initial(n) for n in names}


def _from_child(names: list[str]) -> dict[str, str] | None:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kiosk.initials"],
            input=json.dumps(names),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=True,
        )
        out = json.loads(done.stdout)
        return {n: str(out[n]) for n in names}
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as e:
        log.warning("pinyin initials from a child process failed (%s); made here", e)
        return None


def main() -> int:
    names = json.loads(sys.stdin.read())
    json.dump({n: pinyin_initial(n) for n in names}, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
