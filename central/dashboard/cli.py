"""`careterm site dashboard` and `careterm site users` (SPEC 9.7)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from central.dashboard.users import (
    check_name,
    check_password,
    hash_password,
    read_users,
    write_users,
)
from terminal.cliutil import UsageError

DEFAULT_USERS = "careterm-users.txt"


def register(ssub: argparse._SubParsersAction) -> None:
    d = ssub.add_parser(
        "dashboard", help="the site console: live device health, alerts, today's ratings"
    )
    d.add_argument(
        "--db",
        default="sqlite:///careterm-site.db",
        metavar="URL",
        help="the collector's database: sqlite:///path.db or postgresql+psycopg://...",
    )
    d.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="address to serve on (default 127.0.0.1:8080; 0.0.0.0:8443 for every interface)",
    )
    _users_arg(d)
    d.add_argument("--cert", default="", metavar="F", help="HTTPS: server certificate (PEM)")
    d.add_argument("--key", default="", metavar="F", help="HTTPS: its private key (PEM)")
    d.add_argument(
        "--staff",
        default="",
        metavar="staff.json",
        help="staff directory (as published) to show clerks' names",
    )
    d.add_argument(
        "--timezone",
        default="Asia/Shanghai",
        metavar="NAME",
        help="IANA zone for 'today' and the times shown (default Asia/Shanghai, as site report "
        "and the devices)",
    )
    d.add_argument(
        "--refresh",
        type=float,
        default=2.0,
        metavar="S",
        help="read the database every S seconds (default 2)",
    )
    d.add_argument(
        "--alert-days",
        type=int,
        default=7,
        metavar="N",
        help="list unacknowledged alerts of the last N days (default 7)",
    )
    d.add_argument(
        "--session-hours",
        type=float,
        default=12.0,
        metavar="H",
        help="log out after H hours without a request (default 12; an open page keeps its session)",
    )
    d.add_argument(
        "--secret-file",
        default="",
        metavar="F",
        help="cookie-signing key, created if missing (default: the users file + .secret)",
    )
    d.add_argument("--site-name", default="", metavar="TEXT", help="shown in the page title")
    d.set_defaults(func=_dashboard)

    u = ssub.add_parser("users", help="console users: add (or change a password), remove, list")
    usub = u.add_subparsers(dest="users_command", metavar="USERS_COMMAND", required=True)
    add = usub.add_parser(
        "add",
        help="add a user or set a new password (asked for, or one line on stdin; never argv)",
    )
    add.add_argument("name", metavar="NAME")
    _users_arg(add)
    add.set_defaults(func=_users_add)
    rm = usub.add_parser("remove", help="remove a user (their sessions end at once)")
    rm.add_argument("name", metavar="NAME")
    _users_arg(rm)
    rm.set_defaults(func=_users_remove)
    ls = usub.add_parser("list", help="list user names")
    _users_arg(ls)
    ls.set_defaults(func=_users_list)


def _users_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--users",
        default=DEFAULT_USERS,
        metavar="FILE",
        help=f"the users file (default {DEFAULT_USERS})",
    )


def _dashboard(args: argparse.Namespace) -> int:
    # Imported here: the web stack is the optional `site` extra; devices do not install it.
    try:
        from central.dashboard.server import ServeOptions, serve
    except ModuleNotFoundError as e:
        raise UsageError(f"the site console needs {e.name}: pip install 'careterm[site]'") from None
    return serve(
        ServeOptions(
            db=args.db,
            listen=args.listen,
            users=args.users,
            cert=args.cert,
            key=args.key,
            staff=args.staff,
            timezone=args.timezone,
            refresh_s=args.refresh,
            alert_days=args.alert_days,
            session_hours=args.session_hours,
            secret_file=args.secret_file,
            site_name=args.site_name,
            verbose=args.verbose,
        )
    )


def read_new_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise UsageError("the two passwords differ; nothing was changed")
        return check_password(first)
    line = sys.stdin.readline()
    return check_password(line.rstrip("\r\n"))


def _users_add(args: argparse.Namespace) -> int:
    path = Path(args.users)
    name = check_name(args.name)
    users = read_users(path)
    password = read_new_password()
    existed = name in users
    users[name] = hash_password(password)
    write_users(path, users)
    print(f"{'password changed for' if existed else 'added'} {name} in {path}")
    return 0


def _users_remove(args: argparse.Namespace) -> int:
    path = Path(args.users)
    users = read_users(path)
    if args.name not in users:
        raise UsageError(f"{path}: no user {args.name!r}")
    del users[args.name]
    write_users(path, users)
    print(f"removed {args.name} from {path}")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    for name in sorted(read_users(Path(args.users))):
        print(name)
    return 0
