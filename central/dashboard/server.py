"""Run the site console: options checked, the listening socket bound, uvicorn serving (TLS
when a certificate is given)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import uvicorn

from central.dashboard.app import Settings, create_app
from central.dashboard.data import ConsoleData
from central.dashboard.users import UserStore
from central.db import FIRST_FILE_WAIT_S, open_db
from central.report import load_staff_names
from central.report_model import DEFAULT_TIMEZONE
from terminal.cliutil import UsageError

log = logging.getLogger("careterm.dashboard")


@dataclass
class ServeOptions:
    db: str
    listen: str
    users: str
    cert: str = ""
    key: str = ""
    staff: str = ""
    timezone: str = DEFAULT_TIMEZONE
    refresh_s: float = 2.0
    alert_days: int = 7
    session_hours: float = 12.0
    secret_file: str = ""
    site_name: str = ""
    verbose: bool = False


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (all addresses)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {value!r}: use HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8443")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name: let the resolver pick
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(
            f"--listen {host}:{port}: {e.strerror} (is another console or program using it?)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def check_tls(cert: str, key: str) -> None:
    if bool(cert) != bool(key):
        raise UsageError("--cert and --key go together (the server certificate and its key)")
    if not cert:
        return
    for flag, path in (("--cert", cert), ("--key", key)):
        if not os.access(path, os.R_OK):
            raise UsageError(f"{flag} {path}: cannot read the file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as e:
        raise UsageError(
            f"--cert {cert} / --key {key}: {e} (a PEM certificate and its private key, "
            "e.g. server.crt and server.key from `careterm provision broker`)"
        ) from None


def load_secret(path: Path) -> str:
    """The cookie-signing key, kept beside the users file so sessions survive a restart."""
    try:
        text = path.read_text().strip()
        if len(text) >= 32:
            return text
    except FileNotFoundError:
        pass
    except OSError as e:
        raise UsageError(f"--secret-file {path}: {e.strerror}") from None
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
    except OSError as e:
        log.warning(
            "dashboard: cannot keep the session key in %s (%s): sessions end when the console "
            "restarts",
            path,
            e.strerror,
        )
    return value


def time_zone(name: str) -> ZoneInfo:
    """The site's zone: the same default as `site report`, so "today" is the report's day."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--timezone {name!r}: not an IANA time zone (e.g. Asia/Shanghai)"
        ) from None


def serve(opts: ServeOptions) -> int:
    host, port = parse_listen(opts.listen)
    check_tls(opts.cert, opts.key)
    if opts.refresh_s <= 0 or opts.alert_days < 1 or opts.session_hours <= 0:
        raise UsageError("--refresh, --alert-days and --session-hours must be positive")
    users = UserStore(opts.users)
    tz = time_zone(opts.timezone)
    engine = open_db(opts.db, must_exist=True, wait_s=FIRST_FILE_WAIT_S)
    data = ConsoleData(
        engine, tz=tz, staff_names=load_staff_names(opts.staff), alert_days=opts.alert_days
    )
    settings = Settings(
        data=data,
        users=users,
        secret=load_secret(Path(opts.secret_file or f"{opts.users}.secret")),
        tz=tz,
        refresh_s=opts.refresh_s,
        https=bool(opts.cert),
        session_hours=opts.session_hours,
        site_name=opts.site_name,
    )
    sock = bind(host, port)
    scheme = "https" if opts.cert else "http"
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "dashboard: %s://%s:%d/ over %s (%d users)",
        scheme,
        shown,
        port,
        engine.url.render_as_string(hide_password=True),
        len(users.names()),
    )
    config = uvicorn.Config(
        create_app(settings),
        ssl_certfile=opts.cert or None,
        ssl_keyfile=opts.key or None,
        log_level="info" if opts.verbose else "warning",
        access_log=opts.verbose,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])
    engine.dispose()
    return 0
