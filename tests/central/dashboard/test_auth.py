"""No page or data without a session: every route, cookies that are forged, expired, or belong
to a removed user or an old password; CSRF on every state change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Mount, Route

from central.dashboard.users import hash_password, read_users, write_users
from tests.central.dashboard.conftest import PASSWORD, TestClient
from tests.central.dashboard.site_data import fill_site

PUBLIC = {"/login", "/static"}


def concrete(path: str) -> str:
    """A request path for a route pattern (`/alerts/{event_id:path}/ack` -> `/alerts/x/ack`)."""
    return re.sub(r"\{[^}]+\}", "x", path)


def routes(app) -> list[tuple[str, str]]:
    out = []
    for r in app.routes:
        if isinstance(r, Route):
            for m in sorted(r.methods or {"GET"}):
                if m != "HEAD":
                    out.append((m, r.path))
        elif isinstance(r, Mount):
            out.append(("GET", r.path + "/console.css"))
    return out


def log_in(client: TestClient, name: str = "wang", password: str = PASSWORD) -> None:
    r = client.post("/login", data={"user": name, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf_of(client: TestClient) -> str:
    page = client.get("/").text
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def test_every_route_but_login_and_static_refuses_a_request_without_a_session(app_factory) -> None:
    app = app_factory()
    protected = [(m, p) for m, p in routes(app) if not any(p.startswith(x) for x in PUBLIC)]
    # A route added later is covered by this test without editing it.
    assert {p for _, p in protected} >= {"/", "/wall", "/events", "/api/state", "/logout"}
    with TestClient(app) as client:
        for method, path in protected:
            r = client.request(method, concrete(path), follow_redirects=False)
            if path.startswith(("/api/", "/events", "/alerts/")):
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.json() == {"error": "login required"}
            else:
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/login?next=")
            assert "W01" not in r.text and "pad-" not in r.text
        # Paths that match no route are no way around it either.
        for path in ("/nope", "/api/nope", "/static/../app.py", "//evil.example/"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code in (303, 401, 404), path
            assert "pad-" not in r.text


def test_public_routes_show_nothing_of_the_site(app_factory, engine) -> None:
    fill_site(engine)
    with TestClient(app_factory()) as client:
        login = client.get("/login")
        assert login.status_code == 200
        assert "登录" in login.text and "pad-w01" not in login.text and "W01" not in login.text
        assert client.get("/static/console.css").status_code == 200


def test_log_in_opens_every_page_and_the_data(app_factory, engine) -> None:
    fill_site(engine)
    with TestClient(app_factory()) as client:
        log_in(client)
        page = client.get("/")
        assert page.status_code == 200
        assert "服务终端监控台" in page.text and "pad-w01" in page.text and "wang" in page.text
        assert client.get("/wall").status_code == 200
        state = client.get("/api/state").json()
        assert {d["device"] for d in state["devices"]} >= {"pad-w01", "kiosk-02"}
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"


def test_wrong_password_and_unknown_user_are_refused_alike(app_factory) -> None:
    with TestClient(app_factory()) as client:
        for name, pw in (("wang", "wrong password"), ("nobody", PASSWORD), ("wang", "")):
            r = client.post("/login", data={"user": name, "password": pw}, follow_redirects=False)
            assert r.status_code == 401
            assert "用户名或密码不正确" in r.text
        assert client.get("/api/state").status_code == 401


def test_a_tampered_or_forged_cookie_is_refused(app_factory) -> None:
    with TestClient(app_factory()) as client:
        log_in(client)
        good = client.cookies["careterm_console"]
        assert client.get("/api/state").status_code == 200
        client.cookies.clear()
        bad = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]  # one flipped character
        client.cookies.set("careterm_console", bad)
        assert client.get("/api/state").status_code == 401
        client.cookies.set("careterm_console", "eyJ1c2VyIjogIndhbmcifQ==")  # unsigned JSON
        assert client.get("/api/state").status_code == 401


def test_a_session_signed_with_another_key_is_refused(app_factory, engine, users_file) -> None:
    from central.dashboard.app import Settings, create_app
    from central.dashboard.data import ConsoleData
    from central.dashboard.users import UserStore

    with TestClient(app_factory()) as client:
        log_in(client)
        cookie = client.cookies["careterm_console"]
    other = create_app(
        Settings(data=ConsoleData(engine), users=UserStore(users_file), secret="k" * 40)
    )
    with TestClient(other) as client:
        client.cookies.set("careterm_console", cookie)
        assert client.get("/api/state").status_code == 401


def test_removing_a_user_or_changing_the_password_ends_their_sessions(
    app_factory, users_file: Path
) -> None:
    with TestClient(app_factory()) as wang, TestClient(app_factory()) as li:
        log_in(wang)
        log_in(li, "li", PASSWORD + "2")
        users = read_users(users_file)
        users["wang"] = hash_password("a new password")
        del users["li"]
        write_users(users_file, users)
        assert wang.get("/api/state").status_code == 401
        assert li.get("/api/state").status_code == 401
        log_in(wang, "wang", "a new password")
        assert wang.get("/api/state").status_code == 200


def test_logout_ends_the_session(app_factory) -> None:
    with TestClient(app_factory()) as client:
        log_in(client)
        token = csrf_of(client)
        assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
        r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert client.get("/api/state").status_code == 401


def test_logout_ends_the_session_for_a_copy_of_its_cookie_too(app_factory) -> None:
    """Audit #3: the signed cookie alone cannot be taken back; the server ends the session."""
    with TestClient(app_factory()) as client:
        log_in(client)
        copy = client.cookies["careterm_console"]
        token = csrf_of(client)
        assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code
        client.cookies.set("careterm_console", copy)
        assert client.get("/api/state").status_code == 401
        assert client.get("/events").status_code == 401
        assert client.get("/", follow_redirects=False).status_code == 303
        client.cookies.clear()
        log_in(client)  # a new log-in is a new session
        assert client.get("/api/state").status_code == 200


def test_failed_log_ins_lock_the_name_out_even_in_parallel(app_factory) -> None:
    """Audit #5: the one-second delay per failure did not stop parallel guessing. After
    five failures a name is locked out, answered at once, even for the right password;
    guesses sent together get no more tries than one after the other."""
    import asyncio

    import httpx

    app = app_factory()

    async def guesses() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

            async def one(pw: str) -> int:
                r = await c.post("/login", data={"user": "wang", "password": pw})
                return r.status_code

            return list(await asyncio.gather(*(one(f"guess {i}") for i in range(20))))

    with TestClient(app) as client:
        codes = asyncio.run(guesses())
        assert sorted(codes).count(401) <= 5 and codes.count(429) >= 15, codes
        r = client.post("/login", data={"user": "wang", "password": PASSWORD})
        assert r.status_code == 429
        assert "登录失败次数过多" in r.text and "秒后再试" in r.text
        assert client.get("/api/state").status_code == 401
        log_in(client, "li", PASSWORD + "2")  # another name from another address: not locked


def test_acknowledge_needs_the_csrf_token_and_records_who(app_factory, engine) -> None:
    ids = fill_site(engine)
    eid = ids["paper"]
    with TestClient(app_factory()) as client:
        log_in(client)
        token = csrf_of(client)
        r = client.post(f"/alerts/{eid}/ack", headers={"Accept": "application/json"})
        assert r.status_code == 403
        r = client.post(
            f"/alerts/{eid}/ack", headers={"Accept": "application/json", "X-CSRF-Token": "nope"}
        )
        assert r.status_code == 403
        r = client.post(
            f"/alerts/{eid}/ack", headers={"Accept": "application/json", "X-CSRF-Token": token}
        )
        assert r.status_code == 200 and r.json()["acked_by"] == "wang"
        # The form without JavaScript: token in the body, back to the console.
        other = ids["help"]
        r = client.post(f"/alerts/{other}/ack", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        r = client.post(
            "/alerts/no-such-alert/ack",
            headers={"Accept": "application/json", "X-CSRF-Token": token},
        )
        assert r.status_code == 404
        state = client.get("/api/state").json()
        acked = {a["id"]: a["acked_by"] for a in state["alerts"] if a["acked_by"]}
        assert acked == {eid: "wang", other: "wang"}


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/wall", "/wall"),
        ("/?lang=en", "/?lang=en"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
def test_log_in_returns_only_to_a_page_of_this_site(
    app_factory, target: str, expected: str
) -> None:
    with TestClient(app_factory()) as client:
        r = client.post(
            "/login",
            data={"user": "wang", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == expected


def test_session_cookie_is_http_only_strict_and_secure_under_https(app_factory) -> None:
    with TestClient(app_factory(https=True), base_url="https://testserver") as client:
        r = client.post(
            "/login", data={"user": "wang", "password": PASSWORD}, follow_redirects=False
        )
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
