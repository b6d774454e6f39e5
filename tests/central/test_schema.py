"""The site database's schema version: a database of the earlier schema is refused."""

from __future__ import annotations

import sqlite3

from tests.conftest import run_careterm


def test_a_database_of_the_earlier_schema_is_refused_with_the_reason(tmp_path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE events (id TEXT PRIMARY KEY, device TEXT, seq INTEGER)")
    db.commit()
    db.close()
    for cmd in (["site", "collect", "--broker", "mqtt://127.0.0.1:1"], ["site", "report"]):
        r = run_careterm(*cmd, "--db", f"sqlite:///{path}")
        assert r.returncode == 2, r.stderr
        assert "earlier careterm schema" in r.stderr and "Traceback" not in r.stderr
