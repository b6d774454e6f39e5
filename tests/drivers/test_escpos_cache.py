"""python-escpos's printer database is pickled once into a private cache folder and read from there
at every later start (not parsed from YAML again), never from a folder others can write to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from careterm.harness import careterm_env

SHOW = (
    "import os, drivers.printer.escpos_build, escpos.capabilities as c;"
    "print(os.environ.get('ESCPOS_CAPABILITIES_PICKLE_DIR', ''));"
    "print(c.full_load)"
)


def start(cache: Path) -> tuple[str, bool]:
    env = careterm_env(CACHE_DIRECTORY=str(cache))
    env.pop("ESCPOS_CAPABILITIES_PICKLE_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return out[0], out[1] == "True"


def test_the_printer_database_is_parsed_once_then_read_from_the_lasting_pickle(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "careterm" / "escpos"
    where, parsed = start(tmp_path)
    assert parsed and Path(where).parent == folder  # staged, then adopted at exit
    assert len(list(folder.glob("*.capabilities.pickle"))) == 1
    where, parsed = start(tmp_path)
    assert not parsed and Path(where) == folder
    assert (folder.stat().st_mode & 0o777) == 0o700


def test_a_folder_others_can_write_to_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "careterm" / "escpos"
    start(tmp_path)
    os.chmod(folder, 0o777)
    where, parsed = start(tmp_path)
    assert parsed and where == ""  # python-escpos's own default: a new temporary folder
