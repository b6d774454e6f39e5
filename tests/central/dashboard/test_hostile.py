"""The console against a compromised device and a hostile network (audit of the site console):
whatever a device stores is shown as text in its place, never as markup, a class, a link to
another alert or the session's CSRF token; a page on another site cannot post a form to the
console; one client cannot hold huge bodies or unlimited live streams."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
from sqlalchemy import select

from central.dashboard.app import MAX_BODY, STREAMS_PER_SESSION
from central.db import events, open_db
from tests.central.dashboard.browser import log_in as browser_log_in
from tests.central.dashboard.conftest import PASSWORD, TestClient
from tests.central.dashboard.site_data import (
    Device,
    rating,
    store_envelopes,
    store_status,
    store_telemetry,
)
from tests.central.dashboard.test_auth import csrf_of, log_in
from tests.central.dashboard.test_server import logged_in, next_state
from tests.conftest import wait_for

HOSTILE = "<img src=x onerror=alert(1)>\"'&"
RLO = "\u202e"  # right-to-left override: "is active" drawn over "evitca si"


def hostile_site(engine, now: float) -> dict[str, str]:
    """One pad sends what its certificate allows, with hostile strings in every text field."""
    d = Device("pad-evil")
    ids = {
        "fake_acked": d.alert("help", "info is-acked", "still open", now - 50),
        "csrf": d.alert("printer", "warning", "token: __CSRF__", now - 40),
        "rlo": d.alert("printer", "warning", f"printer {RLO}evitca si", now - 35),
        "markup": d.alert(
            "dissatisfied",
            "critical",
            HOSTILE,
            now - 30,
            window=HOSTILE[:60],
            staff=HOSTILE[:60],
            score=1,
            scale=4,
            label=HOSTILE[:60],
            reason=HOSTILE,
        ),
    }
    store_envelopes(engine, d.envelopes)
    store_status(engine, "pad-evil", "online", 1, now - 100, version=HOSTILE)
    store_telemetry(
        engine,
        "pad-evil",
        now - 5,
        printer={"state": "error drv-ok", "detail": HOSTILE},
        card_reader=HOSTILE,
        buttons={"state": "ok\u202e", "detail": "\x1b[2J" + HOSTILE},
    )
    return ids


def dotted_alert(engine, now: float, target: str) -> str:
    """An alert whose id walks from its own acknowledge URL to another alert's."""
    d = Device("pad-dots")
    d.alert("help", "warning", "dot-dot id", now - 20)
    topic, env = d.envelopes[-1]
    env["id"] = f"x/../../alerts/{target}"
    store_envelopes(engine, [(topic, env)])
    return env["id"]


def pages(client: TestClient) -> dict[str, str]:
    out = {p: client.get(p).text for p in ("/", "/wall", "/?lang=en")}
    with client.stream("GET", "/events?view=console") as r:
        out["events"] = "".join(next_state(r.iter_lines())["fragments"].values())
    with client.stream("GET", "/events?view=wall") as r:
        out["events-wall"] = "".join(next_state(r.iter_lines())["fragments"].values())
    return out


def test_device_text_is_shown_as_text_everywhere(app_factory, engine) -> None:
    ids = hostile_site(engine, time.time())
    with TestClient(app_factory()) as client:
        log_in(client)
        token = csrf_of(client)
        for where, html in pages(client).items():
            assert "<img" not in html and "onerror=alert(1)>" not in html, where
            # No bidi override or control character reaches the page: an alert cannot draw
            # "printer is active" over "printer evitca si".
            assert RLO not in html and "\x1b" not in html, where
            # The session's CSRF token appears only where the page puts it, never in place of
            # device text (it was substituted into any fragment that said __CSRF__).
            shown = html.count(token) - html.count(f'value="{token}"')
            shown -= html.count(f'data-csrf="{token}"')
            assert shown == 0, where
            assert "token: __CSRF__" in html or where.startswith(("/wall", "events-wall")), where
        page = client.get("/").text
        # A severity or part state is never more than one class: an open alert cannot make
        # itself look acknowledged (`is-acked` greys it out), a broken printer look fine.
        for classes in re.findall(r'<li class="alert ([^"]*)"', page):
            assert classes.split()[-1] == "is-open" and "is-acked" not in classes.split(), classes
        for classes in re.findall(r'class="drv ([^"]*)"', page):
            assert len(classes.split()) == 1, classes
        assert 'data-id="{}"'.format(ids["fake_acked"]) in page


def test_the_ack_form_of_an_alert_acknowledges_that_alert(app_factory, engine) -> None:
    now = time.time()
    victim = hostile_site(engine, now)["markup"]  # a critical alert
    dotted = dotted_alert(engine, now, victim)
    with TestClient(app_factory()) as client:
        log_in(client)
        page = client.get("/").text
        li = re.search(rf'<li class="alert[^>]*data-id="{re.escape(dotted)}".*?</li>', page, re.S)
        action = re.search(r'action="([^"]+)"', li.group(0)).group(1)
        # Where a browser posts the form: dot segments resolved against the page's URL.
        target = urljoin("http://testserver/", action)
        r = client.post(
            target, data={"csrf": csrf_of(client)}, headers={"Accept": "application/json"}
        )
        assert r.status_code == 200 and r.json()["id"] == dotted
        acked = {a["id"] for a in client.get("/api/state").json()["alerts"] if a["acked_by"]}
        assert acked == {dotted}  # not the critical alert the id pointed at


def test_a_page_on_another_site_cannot_post_to_the_console(app_factory) -> None:
    """Log-in CSRF: without an Origin check a page elsewhere could log the browser in to an
    account of the attacker's choosing (its acknowledgements then in the attacker's name)."""
    form = {"user": "wang", "password": PASSWORD}
    with TestClient(app_factory()) as client:
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site", "Origin": "http://other.testserver"},
        ):
            r = client.post("/login", data=form, headers=headers, follow_redirects=False)
            assert r.status_code == 403, headers
            assert "careterm_console" not in r.headers.get("set-cookie", "")
        # The console's own page, an old browser that names the origin, and a tool: accepted.
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://testserver"}, {}):
            r = client.post("/login", data=form, headers=headers, follow_redirects=False)
            assert r.status_code == 303, headers
        token = csrf_of(client)
        r = client.post("/logout", data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403 and client.get("/api/state").status_code == 200


def test_https_answers_carry_hsts(app_factory) -> None:
    with TestClient(app_factory(https=True), base_url="https://testserver") as client:
        r = client.get("/login")
        assert r.headers["strict-transport-security"].startswith("max-age=")
        assert "base-uri 'none'" in r.headers["content-security-policy"]
    with TestClient(app_factory()) as client:
        assert "strict-transport-security" not in client.get("/login").headers


def _raw(port: int, request: bytes) -> bytes:
    """The status line the server answers with, or b"" if it waits for more (15 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(request)
        try:
            return s.recv(200).split(b"\r\n")[0]
        except TimeoutError:
            return b""


def test_a_huge_log_in_body_is_refused_before_it_is_read(tmp_path: Path, console_factory) -> None:
    con = console_factory(f"sqlite:///{tmp_path}/s.db")
    head = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    # A Content-Length of 1 GB: refused at once, not after the server has held it in memory.
    status = _raw(con.port, head + b"Content-Length: 1000000000\r\n\r\nuser=x&password=aaaa")
    assert status.startswith(b"HTTP/1.1 413"), status
    # No length (chunked): refused as soon as more than MAX_BODY has come.
    chunk = b"a" * (MAX_BODY // 2 + 1)
    body = b"10\r\nuser=x&password=\r\n" + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3
    status = _raw(con.port, head + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert status.startswith(b"HTTP/1.1 413"), status
    # An ordinary log-in still works.
    logged_in(con.url).close()


def test_live_streams_per_session_are_limited_and_given_back(
    tmp_path: Path, console_factory
) -> None:
    con = console_factory(f"sqlite:///{tmp_path}/s.db")
    client = logged_in(con.url)
    opened = []
    try:
        for _ in range(STREAMS_PER_SESSION):
            cm = client.stream("GET", "/events?view=wall")
            r = cm.__enter__()
            opened.append(cm)
            assert r.status_code == 200
        r = client.get("/events")
        assert r.status_code == 429
        # Another log-in (another display) has its own allowance.
        other = logged_in(con.url)
        with other.stream("GET", "/events") as r2:
            assert r2.status_code == 200
        other.close()
    finally:
        for cm in opened:
            cm.__exit__(None, None, None)

    def one_more() -> bool:
        with client.stream("GET", "/events") as r3:
            return r3.status_code == 200

    # Closed streams are given back (the server sees the close when it next writes).
    wait_for(one_more, 60, 0.5, what="a stream slot given back")
    client.close()


@pytest.mark.browser
def test_long_device_text_never_widens_the_page(tmp_path: Path, console_factory, browser) -> None:
    """A 64-character window id or version and a 200-character part detail (all a device may
    send) pushed the ack buttons and the wall's alert list off the screen."""
    url = f"sqlite:///{tmp_path}/s.db"
    engine = open_db(url)
    now = time.time()
    d = Device("pad-long")
    d.event("rating", rating("W" * 64, "S" * 64, 1, None), now - 60)
    d.alert("dissatisfied", "critical", "M" * 300, now - 30, window="W" * 64, label="L" * 64)
    store_envelopes(engine, d.envelopes)
    store_status(engine, "pad-long", "online", 1, now - 100, version="V" * 64)
    store_telemetry(engine, "pad-long", now - 5, printer={"state": "error", "detail": "D" * 200})
    engine.dispose()
    con = console_factory(url)
    browser_log_in(browser, con.url, "wang", PASSWORD)
    for path in ("/", "/wall"):
        browser.get(con.url + path)
        wait_for(
            lambda: browser.execute_script("return window.careterm && window.careterm.updates > 0"),
            15,
            what="the first live update",
        )
        wide, seen = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide <= seen, (path, wide, seen)
    browser.get(con.url + "/")
    wait_for(lambda: browser.execute_script("return window.careterm.updates > 0"), 15)
    inside = browser.execute_script(
        "const b = document.querySelector('.ack'), p = document.querySelector('.alerts-panel');"
        "const r = b.getBoundingClientRect(), q = p.getBoundingClientRect();"
        "return r.right <= q.right + 1 && r.width > 0;"
    )
    assert inside, "the ack button is outside its panel"


def test_the_dotted_id_helper_stores_its_alert(engine) -> None:
    """The repro above stores what the collector accepts (an id with slashes and dots)."""
    eid = dotted_alert(engine, time.time(), "x")
    with engine.connect() as conn:
        assert conn.execute(select(events.c.id).where(events.c.id == eid)).scalar() == eid
