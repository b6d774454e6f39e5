"""A lasting place for python-escpos's pickled printer database.

At import, `escpos.capabilities` reads its printer database (a 1 MB YAML file, ~0.2-0.5 s of CPU
on a desktop, seconds on a Pi-class kiosk) unless it finds a pickle of it in
`$ESCPOS_CAPABILITIES_PICKLE_DIR`; without that variable it looks in a new temporary folder every
time, so it never finds one (and leaves a 1 MB folder in /tmp per start). `use_cache()`, run
before anything imports escpos, points it at a private folder of the user's cache that lasts.

The pickle is only ever taken from a folder of this user that nobody else can write to, and it is
put there whole (written elsewhere, then renamed) so that two processes starting at once never
read half of one.
"""

from __future__ import annotations

import atexit
import os
import platform
import tempfile
from importlib.util import find_spec
from pathlib import Path

from terminal.cache_dir import cache_root

ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"


def cache_dir() -> Path | None:
    """careterm's cache folder (terminal.cache_dir), escpos/ in it."""
    root = cache_root()
    return root / "escpos" if root is not None else None


def _private(folder: Path) -> bool:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _database() -> Path | None:
    spec = find_spec("escpos")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "capabilities.json"


def use_cache() -> None:
    """Point python-escpos at the lasting pickle, or (none yet, or older than the database) at a
    new private folder whose pickle takes the lasting one's place when this process ends."""
    if ENV in os.environ:
        return
    folder = cache_dir()
    db = _database()
    if folder is None or db is None or not _private(folder):
        return  # python-escpos's own default: a new temporary folder
    pickle = folder / f"{platform.python_version()}.capabilities.pickle"
    try:
        fresh = pickle.stat().st_mtime >= db.stat().st_mtime
    except OSError:
        fresh = False
    if fresh:
        os.environ[ENV] = str(folder)
        return
    try:
        staging = Path(tempfile.mkdtemp(dir=folder))
    except OSError:
        return
    os.environ[ENV] = str(staging)
    atexit.register(_adopt, staging / pickle.name, pickle)


def _adopt(made: Path, lasting: Path) -> None:
    """At exit: the pickle python-escpos made (whole by then) becomes the lasting one. The empty
    folder stays: a child process may have been given it in its environment."""
    try:
        if made.exists():
            os.replace(made, lasting)
    except OSError:
        pass
