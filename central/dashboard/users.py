"""The console's users file: one `name:hash` line per user, scrypt hashes in PHC form.

    # careterm site console users
    wang:$scrypt$ln=15,r=8,p=1$<salt>$<hash>

Passwords never pass through argv; `careterm site users add NAME` reads them from a prompt
or from standard input. A session carries a fingerprint of its user's hash, so a password
change or a removed line ends that user's sessions at their next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from terminal.cliutil import UsageError

NAME_RE = re.compile(r"^[^\s:#][^\s:]{0,31}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

# scrypt cost: 2**15 x 8 x 128 bytes = 32 MiB and about 0.1 s per check on a small server.
LOG_N, R, P = 15, 8, 1
HEADER = "# careterm site console users (careterm site users add NAME); one name:hash per line\n"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    n = 1 << log_n
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * n * r * p, dklen=32
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, LOG_N, R, P)
    return f"$scrypt$ln={LOG_N},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, phc: str) -> bool:
    """True when `password` matches; a malformed hash never matches (and never raises)."""
    try:
        _, scheme, params, salt, digest = phc.split("$")
        if scheme != "scrypt":
            return False
        kv = dict(item.split("=", 1) for item in params.split(","))
        log_n, r, p = int(kv["ln"]), int(kv["r"]), int(kv["p"])
        if not (10 <= log_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            return False  # refuse absurd costs from a hand-edited file
        want = _unb64(digest)
        got = _scrypt(password[:MAX_PASSWORD], _unb64(salt), log_n, r, p)
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(got, want)


def fingerprint(phc: str) -> str:
    """Short digest of a stored hash: sessions carry it, so a new password ends old sessions."""
    return hashlib.sha256(phc.encode()).hexdigest()[:16]


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"user name {name!r}: 1-32 characters, no spaces or ':' (e.g. wang.fang)")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"the password is longer than {MAX_PASSWORD} characters")
    return password


def read_users(path: Path) -> dict[str, str]:
    """name -> PHC hash. Raises UsageError naming the file and line for anything malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the users file: {e}") from None
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, phc = line.partition(":")
        if not sep or not NAME_RE.fullmatch(name) or not phc.startswith("$scrypt$"):
            raise UsageError(
                f"{path}: line {n}: expected name:$scrypt$... (write it with "
                "`careterm site users add NAME`)"
            )
        users[name] = phc
    return users


def write_users(path: Path, users: dict[str, str]) -> None:
    """Replace the file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = HEADER + "".join(f"{name}:{phc}\n" for name, phc in sorted(users.items()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class User:
    name: str
    fingerprint: str


class UserStore:
    """The users file as the server sees it: re-read whenever the file changes on disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}
        self.reload()
        if not self._users:
            raise UsageError(
                f"--users {self.path}: no users; add one with "
                f"`careterm site users add NAME --users {self.path}`"
            )

    def reload(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                self._users = read_users(self.path)
            except UsageError:
                if self._stamp is None:
                    raise
                self._users = {}  # a broken file while running: nobody gets in until it is fixed
            self._stamp = stamp

    def names(self) -> list[str]:
        self.reload()
        return sorted(self._users)

    def check(self, name: str, password: str) -> User | None:
        """The user when the password is right. Slow on purpose (scrypt): call off the loop."""
        self.reload()
        phc = self._users.get(name)
        if phc is None:
            verify_password(password, hash_dummy())  # same time for unknown names
            return None
        return User(name, fingerprint(phc)) if verify_password(password, phc) else None

    def session_user(self, session: dict[str, object]) -> User | None:
        """The user a session belongs to, if that user still exists with the same password."""
        name, fp = session.get("user"), session.get("fp")
        if not isinstance(name, str) or not isinstance(fp, str):
            return None
        self.reload()
        phc = self._users.get(name)
        if phc is None or not hmac.compare_digest(fingerprint(phc), fp):
            return None
        return User(name, fp)


_DUMMY: list[str] = []


def hash_dummy() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(8)))
    return _DUMMY[0]
