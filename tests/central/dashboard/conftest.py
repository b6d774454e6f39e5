"""Fixtures for the site console: a site database on SQLite or PostgreSQL, the console as a
process, a headless browser, and an in-process app for request-level tests."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from central.dashboard.app import Settings, create_app
from central.dashboard.data import ConsoleData
from central.dashboard.users import UserStore, hash_password, write_users
from central.db import open_db
from tests.central.dashboard.browser import BrowserUnavailable, Console, add_user, start_browser
from tests.central.dashboard.site_data import STAFF, TZ

with warnings.catch_warnings():
    # Starlette 1.x prefers the new `httpx2` for its TestClient; `httpx` still works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: F401 - re-exported for the tests

PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path: Path) -> str:
    """The console runs on both databases the collector supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/site.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_db(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def staff_file(tmp_path: Path) -> Path:
    p = tmp_path / "staff.json"
    p.write_text(json.dumps(STAFF, ensure_ascii=False), encoding="utf-8")
    return p


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    p = tmp_path / "users.txt"
    write_users(p, {"wang": hash_password(PASSWORD), "li": hash_password(PASSWORD + "2")})
    return p


@pytest.fixture
def app_factory(engine: Engine, users_file: Path) -> Callable[..., object]:
    """The Starlette app in process (for Starlette's TestClient)."""

    def make(**kw: object):
        data = ConsoleData(engine, tz=TZ, staff_names={s["staff"]: s["name"] for s in STAFF})
        settings = Settings(
            data=data, users=UserStore(users_file), secret="t" * 40, tz=TZ, refresh_s=0.2, **kw
        )
        return create_app(settings)

    return make


@pytest.fixture
def console_factory(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    made: list[Console] = []

    def make(
        db_url: str, *extra: str, user: str = "wang", https: tuple[str, str] | None = None
    ) -> Console:
        c = Console(tmp_path, db_url, "--timezone", "Asia/Shanghai", *extra, https=https)
        if not c.users.exists():
            add_user(c.users, user, PASSWORD)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    try:
        driver = start_browser()
    except BrowserUnavailable as e:
        pytest.skip(str(e))
    yield driver
    driver.quit()
