"""`careterm site dashboard` as a real process: server-sent events, HTTPS with the site CA's
certificates, and one-line errors for bad options."""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest

from central.db import open_db
from provisioning.certs import SiteCA
from tests.central.dashboard.conftest import PASSWORD
from tests.central.dashboard.site_data import Device, store_envelopes, store_status
from tests.conftest import run_careterm


def logged_in(base: str, **kw) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=10, follow_redirects=True, **kw)
    r = c.post("/login", data={"user": "wang", "password": PASSWORD})
    assert r.status_code == 200 and "服务终端监控台" in r.text, r.text[:300]
    return c


def next_state(lines) -> dict:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "state":
            return json.loads(line[6:])
    raise AssertionError("the stream ended")


def test_events_stream_pushes_changes_to_an_open_page(db_url, console_factory) -> None:
    engine = open_db(db_url)
    store_status(engine, "pad-w01", "online", 1, time.time() - 60)
    con = console_factory(db_url)
    client = logged_in(con.url)
    with client.stream("GET", "/events?view=console&lang=en") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = next_state(lines)
        assert set(first["fragments"]) == {
            "f-banner",
            "f-summary",
            "f-alerts",
            "f-devices",
            "f-windows",
            "f-staff",
        }
        assert "pad-w01" in first["fragments"]["f-devices"]
        assert "No open alerts" in first["fragments"]["f-alerts"]
        k = Device("kiosk-07", "kiosk")
        eid = k.alert("printer", "critical", "paper out at the lobby", time.time())
        store_envelopes(engine, k.envelopes)
        second = next_state(lines)
        assert second["version"] != first["version"]
        assert eid in second["fragments"]["f-alerts"]
        assert "paper out at the lobby" in second["fragments"]["f-alerts"]
    engine.dispose()
    # The wall display's stream has its own parts and no buttons.
    with client.stream("GET", "/events?view=wall") as r:
        wall = next_state(r.iter_lines())
        assert set(wall["fragments"]) == {"f-banner", "w-summary", "w-windows", "w-side"}
        assert "paper out at the lobby" in wall["fragments"]["w-side"]
        assert "<button" not in "".join(wall["fragments"].values())
    client.close()


def test_logout_ends_an_open_events_stream_and_every_copy_of_the_cookie(
    tmp_path: Path, console_factory
) -> None:
    """Audit #3: a copy of the session cookie (a shared PC, a leak) kept working after
    logout until it expired, open live streams included."""
    con = console_factory(f"sqlite:///{tmp_path}/s.db")
    client = logged_in(con.url)
    copy = httpx.Client(base_url=con.url, timeout=10, cookies=dict(client.cookies))
    with copy.stream("GET", "/events?view=console") as r:
        lines = r.iter_lines()
        next_state(lines)
        token = client.get("/").text.split('data-csrf="', 1)[1].split('"', 1)[0]
        assert client.post("/logout", data={"csrf": token}).status_code == 200
        rest = []
        for line in lines:  # ends at once with `logout`, no more data
            rest.append(line)
            if line.startswith("data: ") and rest[-2:-1] == ["event: logout"]:
                break
        assert "event: state" not in rest and "event: logout" in rest
    assert copy.get("/api/state").status_code == 401
    assert copy.get("/events").status_code == 401
    assert copy.get("/", follow_redirects=False).status_code == 303
    copy.close()
    client.close()


def test_events_stream_refused_without_a_session(tmp_path: Path, console_factory) -> None:
    con = console_factory(f"sqlite:///{tmp_path}/s.db")
    r = httpx.get(con.url + "/events", timeout=10)
    assert r.status_code == 401


def test_https_with_a_certificate_from_the_site_ca(tmp_path: Path, console_factory) -> None:
    ca = SiteCA.init(tmp_path / "ca")
    server = ca.issue_server(["localhost", "127.0.0.1"], "main")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(server.cert)
    key.write_bytes(server.key)
    con = console_factory(f"sqlite:///{tmp_path}/s.db", https=(str(cert), str(key)))
    assert con.url.startswith("https://")
    client = logged_in(
        con.url, verify=ssl.create_default_context(cafile=tmp_path / "ca" / "ca.crt")
    )
    cookie = next(c for c in client.cookies.jar if c.name == "careterm_console")
    assert cookie.secure
    assert client.get("/api/state").status_code == 200
    client.close()
    with pytest.raises(httpx.ConnectError):  # a certificate nobody here trusts
        httpx.get(con.url + "/login", timeout=5, verify=True)
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port
        httpx.get(con.url.replace("https://", "http://") + "/login", timeout=5)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--listen", "somewhere"], "--listen 'somewhere': use HOST:PORT"),
        (["--cert", "x.crt"], "--cert and --key go together"),
        (["--cert", "/etc/hostname", "--key", "/etc/hostname"], "--cert /etc/hostname"),
        (["--timezone", "Mars/Olympus"], "not an IANA time zone"),
        (["--db", "mysql://x"], "--db"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, users_file: Path, extra, message) -> None:
    args = ["site", "dashboard", "--users", str(users_file), "--db", f"sqlite:///{tmp_path}/s.db"]
    r = run_careterm(*args, *extra)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_named(tmp_path: Path, users_file: Path) -> None:
    open_db(f"sqlite:///{tmp_path}/s.db").dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run_careterm(
            "site",
            "dashboard",
            "--users",
            str(users_file),
            "--db",
            f"sqlite:///{tmp_path}/s.db",
            "--listen",
            f"127.0.0.1:{port}",
        )
    assert r.returncode == 2 and f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr


def test_a_missing_sqlite_database_is_refused_not_created(tmp_path: Path, users_file: Path) -> None:
    """Audit #8: a mistyped --db path made an empty database and a console showing nothing."""
    typo = tmp_path / "typo.db"
    r = run_careterm("site", "dashboard", "--users", str(users_file), "--db", f"sqlite:///{typo}")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"no SQLite database at {typo}" in r.stderr and "site collect" in r.stderr
    assert not typo.exists()
