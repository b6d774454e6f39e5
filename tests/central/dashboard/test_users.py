"""`careterm site users`: scrypt hashes in a private file, passwords never on the command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from central.dashboard.users import (
    UserStore,
    fingerprint,
    hash_password,
    read_users,
    verify_password,
)
from terminal.cliutil import UsageError
from tests.conftest import run_careterm


def users_cmd(*args: str, stdin: str = "") -> tuple[int, str, str]:
    import subprocess

    from tests.conftest import careterm_cmd, careterm_env

    p = subprocess.run(
        careterm_cmd("site", "users", *args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=careterm_env(),
    )
    return p.returncode, p.stdout, p.stderr


def test_hash_is_salted_scrypt_and_verifies_only_the_right_password() -> None:
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a.startswith("$scrypt$ln=15,r=8,p=1$") and a != b
    assert verify_password("s3cret-pass", a) and verify_password("s3cret-pass", b)
    assert not verify_password("s3cret-pasS", a)
    assert not verify_password("", a)
    for broken in ("", "$scrypt$", "$argon2id$v=19$x$y", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA", a[:-3]):
        assert not verify_password("s3cret-pass", broken)


def test_users_add_reads_stdin_writes_a_private_file_and_changes_passwords(tmp_path: Path) -> None:
    f = tmp_path / "etc" / "users.txt"
    rc, out, err = users_cmd("add", "wang.fang", "--users", str(f), stdin="first password\n")
    assert rc == 0, err
    assert "added wang.fang" in out
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    text = f.read_text()
    assert "first password" not in text
    users = read_users(f)
    assert list(users) == ["wang.fang"] and verify_password("first password", users["wang.fang"])
    rc, out, _ = users_cmd("add", "li", "--users", str(f), stdin="another password\n")
    rc, out, _ = users_cmd("add", "wang.fang", "--users", str(f), stdin="second password\n")
    assert rc == 0 and "password changed for wang.fang" in out
    users = read_users(f)
    assert verify_password("second password", users["wang.fang"])
    assert verify_password("another password", users["li"])
    rc, out, _ = users_cmd("list", "--users", str(f))
    assert out.split() == ["li", "wang.fang"]
    rc, out, _ = users_cmd("remove", "li", "--users", str(f))
    assert rc == 0 and list(read_users(f)) == ["wang.fang"]


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (("add", "wang"), "short\n", "at least 8 characters"),
        (("add", "has space"), "long enough password\n", "user name"),
        (("add", "a:b"), "long enough password\n", "user name"),
        (("add", "wang\n"), "long enough password\n", "user name"),  # a line of its own
        (("remove", "nobody"), "", "no user 'nobody'"),
    ],
)
def test_users_refuses_bad_input_with_exit_2(tmp_path: Path, args, stdin, message) -> None:
    rc, _, err = users_cmd(*args, "--users", str(tmp_path / "u.txt"), stdin=stdin)
    assert rc == 2 and message in err
    assert len(err.strip().splitlines()) == 1


def test_there_is_no_way_to_give_a_password_in_argv(tmp_path: Path) -> None:
    r = run_careterm(
        "site", "users", "add", "wang", "--password", "x" * 12, "--users", str(tmp_path / "u")
    )
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr
    assert not (tmp_path / "u").exists()


def test_a_hand_broken_users_file_is_named_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "users.txt"
    f.write_text("# comment\nwang:$scrypt$ln=15,r=8,p=1$AAAA$AAAA\nli plain-text-password\n")
    with pytest.raises(UsageError, match=r"users.txt: line 3"):
        read_users(f)
    r = run_careterm("site", "dashboard", "--users", str(f), "--db", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "line 3" in r.stderr


def test_store_rereads_the_file_and_sessions_follow_the_password(tmp_path: Path) -> None:
    f = tmp_path / "users.txt"
    rc, _, _ = users_cmd("add", "wang", "--users", str(f), stdin="first password\n")
    store = UserStore(f)
    user = store.check("wang", "first password")
    assert user is not None and store.check("wang", "nope nope") is None
    assert store.check("nobody", "first password") is None
    session = {"user": "wang", "fp": user.fingerprint}
    assert store.session_user(session) == user
    users_cmd("add", "wang", "--users", str(f), stdin="second password\n")
    assert store.session_user(session) is None
    assert store.session_user({"user": "wang", "fp": fingerprint(read_users(f)["wang"])})


def test_dashboard_without_users_says_how_to_add_one(tmp_path: Path) -> None:
    r = run_careterm(
        "site",
        "dashboard",
        "--users",
        str(tmp_path / "none.txt"),
        "--db",
        f"sqlite:///{tmp_path}/s.db",
    )
    assert r.returncode == 2
    assert "careterm site users add NAME" in r.stderr
