"""`provision install`: turn a bundle into a running, locked-down service on the device.

Everything is first made into a plan (directories, files with owner and mode, commands), then
applied. With the real root `/` the plan runs: useradd, chown, systemctl. With any other root
(a scratch directory standing in for `/`, as in tests), files are written below it with their
modes, and owners and commands are only recorded in `<root>/careterm-install-plan.json`.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.bundle import ETC, Bundle
from provisioning.certs import write_secret

USER = "careterm"
GROUP = "careterm"
STATE_DIR = "/var/lib/careterm"
UNIT_DIR = "/etc/systemd/system"
UDEV_RULES = "/etc/udev/rules.d/99-careterm.rules"
ENV_FILE = f"{ETC}/careterm.env"
DEFAULT_EXEC = "/opt/careterm/.venv/bin/careterm"
PLAN_FILE = "careterm-install-plan.json"
CMDLINE_FILES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")

UNITS = {"kiosk": "careterm-kiosk.service", "rating_pad": "careterm-pad.service"}
# Device groups per role; the unit's SupplementaryGroups= lists the same ones.
ROLE_GROUPS = {
    "kiosk": ("video", "render", "input", "dialout", "lp"),
    "rating_pad": ("video", "render", "input", "dialout", "audio"),
}


class InstallError(Exception):
    """Installation stopped; the message names the step and the fix."""


# What the hardened units hide from the service (systemd.exec(5)).
HIDDEN_BY = {
    "ProtectHome": ("/home", "/root", "/run/user"),
    "PrivateTmp": ("/tmp", "/var/tmp"),
}
ROLE_BOOTSTRAP = {"kiosk": "kiosk", "rating_pad": "pad"}
"""`scripts/bootstrap --device` argument per role (a pad without a screen: pad-headless)."""


def hidden_paths(unit_text: str) -> dict[str, tuple[str, ...]]:
    """The unit's settings that hide folders from the service, with the folders they hide."""
    out: dict[str, tuple[str, ...]] = {}
    for line in unit_text.splitlines():
        key, _, value = line.strip().partition("=")
        if key in HIDDEN_BY and value.strip().lower() in ("yes", "true", "on", "1", "read-only"):
            out[key] = HIDDEN_BY[key]
    return out


def _interpreter(script: Path) -> Path | None:
    """The `#!` interpreter of a console script such as .venv/bin/careterm."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode(errors="replace").split()
    return Path(parts[0]) if parts else None


def _others_may(path: Path, want: int) -> bool:
    try:
        return path.stat().st_mode & want == want
    except OSError:
        return False


def service_access_problem(
    exe: str, role: str, hidden: dict[str, tuple[str, ...]], source: Path | None = None
) -> str | None:
    """Why the service user could not run `exe` under the unit's protections, with the fix;
    None when it can. Checks the script, its interpreter (also where its symlinks lead), the
    virtual environment and careterm's source tree: each must lie outside what the unit hides
    and be reachable by others (the service user owns none of them)."""
    script = Path(exe)
    source = source or Path(__file__).resolve().parent.parent
    targets: list[tuple[Path, str, int]] = [(script, "the careterm script", 0o5)]
    python = _interpreter(script)
    if python is not None:
        targets.append((python, "its Python", 0o1))
        real = Path(os.path.realpath(python))
        if real != python:
            targets.append((real, f"its Python (where {python} leads)", 0o1))
    targets.append((source, "careterm's source tree", 0o5))
    bootstrap = f"scripts/bootstrap --device {ROLE_BOOTSTRAP.get(role, 'pad')}"
    fix = (
        "install careterm in /opt/careterm with a virtual environment made from the system "
        f"Python: `sudo git clone <repository> /opt/careterm && sudo PYTHON=/usr/bin/python3 "
        f"/opt/careterm/{bootstrap}`, then run `sudo /opt/careterm/.venv/bin/careterm provision "
        "install --bundle ...`"
    )
    for path, what, mode in targets:
        for setting, prefixes in hidden.items():
            for prefix in prefixes:
                if path == Path(prefix) or path.is_relative_to(prefix):
                    return (
                        f"{what} {path} is below {prefix}, which the service cannot see "
                        f"({setting}=yes in its unit); fix: {fix}"
                    )
        for parent in reversed(path.parents):
            if not _others_may(parent, 0o1):
                return (
                    f"{what} {path}: the folder {parent} is closed to other users (mode "
                    f"{_mode(parent)}), so the service user {USER} cannot reach it; fix: "
                    f"`sudo chmod o+rx {parent}`, or {fix}"
                )
        if not _others_may(path, mode):
            return (
                f"{what} {path} is not {'readable and ' if mode & 0o4 else ''}executable by "
                f"other users (mode {_mode(path)}), so the service user {USER} cannot run it; "
                f"fix: `sudo chmod -R o+rX {path if path.is_dir() else path.parent}`, or {fix}"
            )
    return None


def _mode(path: Path) -> str:
    try:
        return f"{path.stat().st_mode & 0o7777:04o}"
    except OSError:
        return "unknown: it does not exist"


def systemd_dir() -> Path:
    """The repository's `systemd/` folder (units and udev rules shipped with careterm)."""
    return Path(__file__).resolve().parent.parent / "systemd"


@dataclass
class Plan:
    dirs: list[tuple[str, int, str]] = field(default_factory=list)
    files: list[tuple[str, bytes, int | None, str | None]] = field(default_factory=list)
    """(path, content, mode, owner); mode and owner None: edit in place, keep what is there
    (the Pi's /boot/firmware is FAT, where chmod and chown fail)."""
    commands: list[list[str]] = field(default_factory=list)
    symlinks: list[tuple[str, str]] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)
    stop_first: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def dir(self, path: str, mode: int, owner: str) -> None:
        self.dirs.append((path, mode, owner))

    def file(
        self, path: str, data: bytes, mode: int | None, owner: str | None = "root:root"
    ) -> None:
        self.files.append((path, data, mode, owner))

    def run(self, *argv: str) -> None:
        self.commands.append(list(argv))


def careterm_executable() -> str:
    """The `careterm` of the environment running this install (the unit's ExecStart)."""
    candidates = []
    if Path(sys.argv[0]).name == "careterm":
        candidates.append(Path(sys.argv[0]).absolute())
    candidates.append(Path(sys.executable).with_name("careterm"))
    found = shutil.which("careterm")
    if found:
        candidates.append(Path(found).absolute())
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return DEFAULT_EXEC


def render_unit(role: str, exe: str) -> bytes:
    text = (systemd_dir() / UNITS[role]).read_text(encoding="utf-8")
    return text.replace(DEFAULT_EXEC, exe).encode()


def render_udev(bundle: Bundle) -> bytes:
    text = (systemd_dir() / "99-careterm.rules").read_text(encoding="utf-8")
    p = bundle.config.printer
    if bundle.role == "kiosk" and p.driver == "usb":
        vid, pid = f"{p.usb_vendor:04x}", f"{p.usb_product:04x}"
        text += (
            "\n# This kiosk's configured printer ([printer] usb_vendor / usb_product).\n"
            f'SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", ATTR{{idVendor}}=="{vid}", '
            f'ATTR{{idProduct}}=="{pid}", GROUP="lp", MODE="0660", SYMLINK+="careterm/printer"\n'
        )
    return text.encode()


def make_plan(bundle: Bundle, root: Path, exe: str | None = None) -> Plan:
    if not (systemd_dir() / UNITS[bundle.role]).is_file():
        raise InstallError(
            f"{systemd_dir()}: the systemd units are not next to this careterm; "
            "install careterm from its source tree (/opt/careterm, "
            "scripts/bootstrap) as the technician's guide says"
        )
    role = bundle.role
    unit = UNITS[role]
    other = [u for r, u in UNITS.items() if r != role]
    groups = ROLE_GROUPS[role]
    plan = Plan()
    real = root == Path("/")

    # The user and its groups.
    if not real or not _group_exists(GROUP):
        plan.run("groupadd", "--system", GROUP)
    if not real or not _user_exists(USER):
        plan.run(
            "useradd",
            "--system",
            "--gid",
            GROUP,
            "--home-dir",
            STATE_DIR,
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "careterm terminal service",
            USER,
        )
    present = [g for g in groups if not real or _group_exists(g)]
    for g in groups:
        if g not in present:
            plan.notes.append(f"group {g!r} does not exist here; {unit} will not get it")
    if present:
        plan.run("usermod", "--append", "--groups", ",".join(present), USER)

    # Configuration and identity: readable by the service, writable by root only.
    plan.dir(ETC, 0o750, f"root:{GROUP}")
    files = bundle.files
    plan.file(f"{ETC}/device.toml", files["device.toml"], 0o640, f"root:{GROUP}")
    plan.file(f"{ETC}/ca.crt", files["ca.crt"], 0o644)
    plan.file(f"{ETC}/device.crt", files["device.crt"], 0o644)
    plan.file(f"{ETC}/device.key", files["device.key"], 0o640, f"root:{GROUP}")
    plan.file(f"{ETC}/site.salt", files["site.salt"], 0o640, f"root:{GROUP}")
    if not (root / ENV_FILE.lstrip("/")).exists():
        plan.file(
            ENV_FILE,
            b"# Extra environment for the careterm service, e.g.\n# CARETERM_PAD_ARGS=--headless\n",
            0o640,
            f"root:{GROUP}",
        )

    # State: the outbox lives here. Another device's outbox must not be sent under this id.
    _set_aside_other_device_state(plan, bundle, root)
    plan.dir(STATE_DIR, 0o750, f"{USER}:{GROUP}")
    data_dir = str(bundle.config.data_dir)
    extra_rw = data_dir != STATE_DIR and not data_dir.startswith(STATE_DIR + "/")
    if extra_rw:
        _check_foreign_data_dir(root, data_dir)
        plan.dir(data_dir, 0o750, f"{USER}:{GROUP}")

    # Hardware access.
    plan.file(UDEV_RULES, render_udev(bundle), 0o644)
    plan.run("udevadm", "control", "--reload-rules")
    plan.run("udevadm", "trigger", "--action=change")

    # Display: no console blanking behind the app.
    for cmdline in CMDLINE_FILES:
        path = root / cmdline.lstrip("/")
        if path.exists():
            text = path.read_text(encoding="utf-8").strip()
            if "consoleblank=" not in text:
                plan.file(cmdline, (text + " consoleblank=0\n").encode(), None, None)
                plan.notes.append(f"{cmdline}: added consoleblank=0 (takes effect at next boot)")
            break

    # The service.
    exe = exe or careterm_executable()
    unit_text = render_unit(role, exe)
    problem = service_access_problem(exe, role, hidden_paths(unit_text.decode()))
    if problem and real:
        # A unit that cannot start its program fails only at boot, far from the technician.
        raise InstallError(problem)
    if problem:
        plan.notes.append(problem)
    plan.file(f"{UNIT_DIR}/{unit}", unit_text, 0o644)
    dropin = f"{UNIT_DIR}/{unit}.d/data-dir.conf"
    if extra_rw:
        # The unit may write only below /var/lib/careterm: open the configured data_dir too.
        plan.file(
            dropin,
            f"# device.data_dir from device.toml\n[Service]\nReadWritePaths={data_dir}\n".encode(),
            0o644,
        )
    elif (root / dropin.lstrip("/")).exists():
        plan.file(dropin, b"# device.data_dir is below /var/lib/careterm\n", 0o644)
    for u in other:
        if (root / UNIT_DIR.lstrip("/") / u).exists():
            plan.run("systemctl", "disable", "--now", u)
    plan.run("systemctl", "daemon-reload")
    plan.run("systemctl", "enable", unit)
    plan.symlinks.append((f"{UNIT_DIR}/multi-user.target.wants/{unit}", f"{UNIT_DIR}/{unit}"))
    plan.run("systemctl", "restart", unit)
    return plan


def _check_foreign_data_dir(root: Path, data_dir: str) -> None:
    """Install gives device.data_dir to the service user (chown, 0750, writable under the
    unit): only a new or empty folder, or one that already holds careterm's outbox."""
    from provisioning.bundle import DATA_DIR_FIX, data_dir_problem
    from terminal.outbox import outbox_path

    problem = data_dir_problem(data_dir)
    if problem:
        raise InstallError(f"device.data_dir: {problem}; make the bundle again")
    folder = root / data_dir.lstrip("/")
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InstallError(
            f"device.data_dir {data_dir}: not a folder (a file or a symlink is there); "
            f"{DATA_DIR_FIX}, and make the bundle again"
        )
    if not folder.is_dir() or (folder / outbox_path("").name).exists():
        return
    try:
        foreign = next(iter(folder.iterdir()), None)
    except OSError as e:
        raise InstallError(f"device.data_dir {data_dir}: cannot read it ({e.strerror})") from None
    if foreign is not None:
        raise InstallError(
            f"device.data_dir {data_dir} already holds other files ({foreign.name}, ...) and "
            f"no careterm outbox: install would give the folder to the careterm user; "
            f"{DATA_DIR_FIX}, and make the bundle again"
        )


def _set_aside_other_device_state(plan: Plan, bundle: Bundle, root: Path) -> None:
    from terminal.config import ConfigError, load_config
    from terminal.outbox import outbox_path

    try:
        old = load_config(root / ETC.lstrip("/") / "device.toml")
    except ConfigError:
        return
    new = bundle.config.device
    if (old.device.id, old.device.site) == (new.id, new.site):
        return
    old_dir = str(old.data_dir)
    if not (root / outbox_path(old_dir).as_posix().lstrip("/")).exists():
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = f"{old_dir.rstrip('/')}.{old.device.id}-{stamp}"
    plan.stop_first += [u for u in UNITS.values() if (root / UNIT_DIR.lstrip("/") / u).exists()]
    plan.moves.append((old_dir, aside))
    plan.notes.append(
        f"{old_dir} held the outbox of {old.device.id} (site {old.device.site}); "
        f"moved to {aside}: send or delete what it holds"
    )


@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """One `provision install` at a time below `root`: two at once (a second terminal, a
    double-clicked script) would interleave two bundles' files: one device's key beside the
    other's certificate. The lock is on the root folder itself, so it needs no file of its
    own and goes with the process."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstallError(
                f"another `careterm provision install` is running on {root}: wait for it to "
                "finish, then run this one again (check with `ps -ef | grep provision`)"
            ) from None
        yield
    finally:
        os.close(fd)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret(path, data, mode)


def _edit_in_place(path: Path, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def _chown(path: Path, owner: str) -> None:
    user, _, group = owner.partition(":")
    os.chown(path, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)


def apply(plan: Plan, root: Path, say=print) -> None:  # type: ignore[no-untyped-def]
    """Carry out the plan below `root`; with `/`, also run the commands and set owners."""
    real = root == Path("/")
    if real and os.geteuid() != 0:
        raise InstallError(
            "provision install changes users, /etc and services: run it as root "
            "(sudo careterm provision install --bundle ...)"
        )

    def at(p: str) -> Path:
        return root / p.lstrip("/")

    commands = list(plan.commands)
    # Users first (files are owned by them), the rest of the commands after the files.
    account_cmds = [c for c in commands if c[0] in ("groupadd", "useradd", "usermod")]
    later_cmds = [c for c in commands if c not in account_cmds]
    if real:
        for unit in plan.stop_first:
            _run(["systemctl", "stop", unit], say)
    for src, dst in plan.moves:
        at(src).rename(at(dst))
        say(f"move  {src} -> {dst}")
    if real:
        for argv in account_cmds:
            _run(argv, say)
    for path, mode, owner in plan.dirs:
        d = at(path)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, mode)
        if real:
            _chown(d, owner)
        say(f"dir   {path} {mode:04o} {owner}")
    for path, data, mode, owner in plan.files:
        f = at(path)
        if mode is None:
            _edit_in_place(f, data)
            say(f"edit  {path}")
            continue
        _write(f, data, mode)
        if real and owner:
            _chown(f, owner)
        say(f"file  {path} {mode:04o} {owner}")
    for link, target in plan.symlinks:
        if real:
            continue  # `systemctl enable` makes it
        lk = at(link)
        lk.parent.mkdir(parents=True, exist_ok=True)
        if lk.is_symlink() or lk.exists():
            lk.unlink()
        lk.symlink_to(target)
    if real:
        for argv in later_cmds:
            _run(argv, say)
    else:
        for argv in commands:
            say(f"would run: {shlex.join(argv)}")
        record = {
            "root": str(root),
            "commands": [["systemctl", "stop", u] for u in plan.stop_first] + commands,
            "moves": plan.moves,
            "owners": {p: o for p, _, o in plan.dirs} | {p: o for p, _, _, o in plan.files if o},
            "modes": {p: f"{m:04o}" for p, m, _ in plan.dirs}
            | {p: f"{m:04o}" for p, _, m, _ in plan.files if m is not None},
            "edited": [p for p, _, m, _ in plan.files if m is None],
            "notes": plan.notes,
        }
        (root / PLAN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for note in plan.notes:
        say(f"note  {note}")


def _run(argv: list[str], say) -> None:  # type: ignore[no-untyped-def]
    say(f"run   {shlex.join(argv)}")
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise InstallError(
            f"{argv[0]} not found: is this a systemd-based Raspberry Pi OS / Debian system?"
        ) from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"`{' '.join(argv)}` did not finish within 120 s") from None
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise InstallError(
            f"`{' '.join(argv)}` failed (exit {res.returncode}): "
            f"{detail[-1] if detail else 'no output'}"
        )
