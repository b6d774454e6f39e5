"""`careterm demo`: the whole product on simulated hardware, on one machine.

It writes a demo site into a folder (salt, device configs, today's roster, directory, staff,
survey), starts a private mosquitto on a free local port when `mosquitto` is on PATH
(otherwise events wait in the outbox), the site collector when available, then the kiosk and
the rating pad as child processes, and stops them all on Ctrl-C.

It tells the truth about where it runs. With a screen someone can see, the kiosk and the pad
open windows. Without one (no display, or a virtual one such as Xvfb that nobody sees) it runs
headless: the pad without a screen, its keypad on a pseudo-terminal fed from the keys typed
into the demo's own terminal (or its standard input), plus the exact `mosquitto_pub` and
`mosquitto_sub` lines to prompt the pad and read what it sends. The pad runs in prompted mode,
as at a real window: a press counts after a prompt (`cmd/prompt`, or the P key).
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import json
import logging
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt
import tomli_w

from careterm.demo_data import demo_cards, demo_directory, demo_roster, demo_staff, demo_survey
from careterm.localbroker import Broker, free_port
from drivers.speaker.factory import SPEAKER_ENV
from terminal.cliutil import UsageError
from terminal.config import DEFAULT_REASONS
from terminal.topics import TopicError, Topics, device_filter, parse_device, site_document

log = logging.getLogger("careterm.demo")

SITE = "demo"
ROOT_TOPIC = "careterm"
PAD = Topics(ROOT_TOPIC, SITE, "pad-w03")
KIOSK_ID = "kiosk-01"
CLERK = "E1024"
PROMPT_WINDOW_S = 30
KEYS = "1234PS"
"""What the headless demo forwards to the pad's keypad (letters in either case)."""
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "queue_caller.py"
"""The integrator's example, in a source checkout."""
VIRTUAL_SERVERS = ("Xvfb", "Xdummy")
"""X servers whose screen nobody sees."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="kiosk and rating pad on simulated hardware, with a demo roster"
    )
    p.add_argument(
        "--dir", default="demo-data", help="where the demo site lives (default ./demo-data)"
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="no screens even where there is a display: the pad runs headless with keys "
        "read from this terminal; the kiosk, which needs a screen, is off",
    )
    p.add_argument(
        "--for",
        dest="duration",
        type=float,
        default=0.0,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--only", choices=("kiosk", "pad"), help="run one terminal only (the kiosk needs a screen)"
    )
    p.add_argument(
        "--sound",
        action="store_true",
        help="voice prompts through the real audio player (default: the simulated speaker, "
        "which logs each clip it would play)",
    )
    p.set_defaults(func=cmd_demo)


def build_site(
    folder: Path, broker_url: str, today: date | None = None, keypad: str = ""
) -> dict[str, Path]:
    """Write the demo site's files; returns their paths by name.

    `keypad`: the pad's keys come from this serial port (the headless demo's pseudo-terminal);
    empty: from the pad's window (`driver = "keyboard"`)."""
    folder.mkdir(parents=True, exist_ok=True)
    today = today or date.today()
    salt_file = folder / "site.salt"
    if not salt_file.exists():
        salt_file.write_text(secrets.token_hex(32) + "\n")
        os.chmod(salt_file, 0o600)
    salt = salt_file.read_bytes().strip()
    roster = demo_roster(salt, today, size=0)
    directory = demo_directory()
    survey = demo_survey()
    staff = demo_staff(salt)
    files = {
        "salt": salt_file,
        "roster": folder / "roster.json",
        "directory": folder / "directory.json",
        "survey": folder / "survey.json",
        "staff": folder / "staff.json",
        "cards": folder / "demo-cards.json",
    }
    for name, body in (
        ("roster", roster),
        ("directory", directory),
        ("survey", survey),
        ("staff", staff),
        ("cards", demo_cards()),
    ):
        files[name].write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    common = {
        "mqtt": {"url": broker_url},
        "privacy": {"salt_file": str(salt_file)},
    }
    kiosk = {
        "device": {
            "id": KIOSK_ID,
            "role": "kiosk",
            "site": SITE,
            "data_dir": str(folder / "kiosk-data"),
        },
        **common,
        # The simulated reader offers the demo cards as buttons.
        "card_reader": {"driver": "keyboard", "device": str(files["cards"])},
        "printer": {"driver": "sim", "device": str(folder / "tickets"), "columns": 48},
        "kiosk": {"fullscreen": False, "roster_file": str(files["roster"])},
    }
    pad = {
        "device": {
            "id": "pad-w03",
            "role": "rating_pad",
            "site": SITE,
            "data_dir": str(folder / "pad-data"),
        },
        **common,
        "window": {"id": "W03", "name": "收费处 3号窗口"},
        # Prompted, as at a real window: a press counts after a prompt from the queue system.
        "rating": {"mode": "prompted", "prompt_window_s": PROMPT_WINDOW_S},
        "buttons": {"driver": "serial", "device": keypad} if keypad else {"driver": "keyboard"},
        "card_reader": {"driver": "none"},
    }
    for name, body, title in (
        ("kiosk", kiosk, "careterm demo kiosk (simulated card reader and printer)"),
        ("pad", pad, "careterm demo rating pad (P opens a prompt, 1-4 rate, S pauses)"),
    ):
        files[name] = folder / f"{name}.toml"
        files[name].write_text(f"# {title}\n" + tomli_w.dumps(body), encoding="utf-8")
    return files


def _publish_retained(port: int, files: dict[str, Path]) -> None:

    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id="careterm-demo-site",
        protocol=mqtt.MQTTv5,
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        for name in ("roster", "directory", "survey", "staff"):
            info = c.publish(
                site_document(ROOT_TOPIC, SITE, name), files[name].read_bytes(), qos=1, retain=True
            )
            info.wait_for_publish(5)
    finally:
        c.loop_stop()
        c.disconnect()


def _sign_in_when_online(port: int, timeout: float = 30.0) -> None:
    """Sign the demo clerk in once the pad is online (a first session has no queue yet)."""

    online = threading.Event()
    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id="careterm-demo-signin",
        protocol=mqtt.MQTTv5,
    )
    c.on_message = lambda cl, u, m: b'"online"' in m.payload and online.set()
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(PAD.status, 1)
    try:
        c.connect("127.0.0.1", port)
    except OSError:
        return
    c.loop_start()
    try:
        if online.wait(timeout):
            body = json.dumps({"cid": "demo-sign-in", "action": "sign_in", "staff": CLERK})
            c.publish(PAD.command("staff"), body, qos=1).wait_for_publish(5)
    finally:
        c.loop_stop()
        c.disconnect()


# -- where the demo runs ---------------------------------------------------------------------


def typed_careterm() -> str:
    """How to type careterm in the commands the demo prints: the virtual environment's script
    (`scripts/bootstrap` puts it in `.venv/bin`, not on PATH), relative to the current folder
    when it is below it; `careterm` when it is the one PATH finds."""
    script = Path(sys.executable).parent / "careterm"
    if not script.exists() or shutil.which("careterm") == str(script):
        return "careterm"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


@dataclass(frozen=True)
class Screen:
    """Whether someone can see and touch the demo's windows here."""

    kind: str
    """"real" (a display someone sees), "virtual" (Xvfb: nobody sees it) or "none"."""
    detail: str


def detect_screen(env: dict[str, str] | None = None, proc: Path = Path("/proc")) -> Screen:
    env = dict(os.environ) if env is None else env
    forced = env.get("CARETERM_DEMO_SCREEN", "")
    if forced in ("real", "virtual", "none"):
        return Screen(forced, f"CARETERM_DEMO_SCREEN={forced}")
    display = env.get("DISPLAY", "")
    if not display and not env.get("WAYLAND_DISPLAY"):
        return Screen("none", "no display: DISPLAY and WAYLAND_DISPLAY are not set")
    if display:
        server = _local_x_server(display, proc)
        if server in VIRTUAL_SERVERS:
            return Screen("virtual", f"the display {display} is a virtual screen ({server})")
        return Screen("real", f"display {display}")
    return Screen("real", f"Wayland display {env['WAYLAND_DISPLAY']}")


def _local_x_server(display: str, proc: Path) -> str:
    """The program name of the local X server serving `display` (":99"), or ""."""
    host, _, rest = display.partition(":")
    if host not in ("", "unix", "localhost") or not rest:
        return ""  # a remote display (ssh -X): someone sees it
    number = rest.split(".")[0]
    try:
        entries = list(proc.iterdir())
    except OSError:
        return ""
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and f":{number}".encode() in argv[1:]:
            name = Path(argv[0].decode(errors="replace")).name
            if name in VIRTUAL_SERVERS or name.startswith("X"):
                return name
    return ""


@dataclass(frozen=True)
class Plan:
    """What this run of the demo starts, and how a person drives it."""

    screen: Screen
    headless: bool
    run_pad: bool
    run_kiosk: bool
    keys_from: str
    """"window" (the pad's window), "terminal" (typed here) or "stdin" (a pipe or file)."""


def plan_demo(args: argparse.Namespace, screen: Screen, stdin_tty: bool) -> Plan:
    headless = bool(args.headless) or screen.kind != "real"
    run_pad = args.only != "kiosk"
    run_kiosk = args.only != "pad" and not headless
    keys_from = "window" if not headless else ("terminal" if stdin_tty else "stdin")
    return Plan(screen, headless, run_pad, run_kiosk, keys_from)


def summary(
    plan: Plan,
    folder: Path,
    url: str,
    port: int,
    broker: bool,
    extra: Sequence[str] = (),
    no_broker: str = "mosquitto is not installed",
) -> str:
    """The lines the demo prints: only what runs, only what works where it runs. `extra`:
    lines of other things the demo started (the site console); `no_broker`: why there is
    no broker, when there is none."""
    base = PAD.base
    lines = ["careterm demo running (Ctrl-C stops it)"]
    if plan.screen.kind == "real" and not plan.headless:
        lines.append(f"  screen:   {plan.screen.detail}: the terminals open windows")
    elif plan.screen.kind == "real":
        lines.append("  screen:   not used (--headless)")
    else:
        lines.append(f"  screen:   {plan.screen.detail}; the demo runs headless")
    if broker:
        lines.append(f"  broker:   {url}")
        lines.append(f"  watch:    mosquitto_sub -p {port} -v -t '{ROOT_TOPIC}/#'")
    else:
        lines.append(
            f"  broker:   none ({no_broker}): events wait in each outbox, "
            f"see `careterm outbox list --config {folder / 'pad.toml'}`"
        )
    if plan.run_kiosk:
        lines += [
            f"  kiosk:    {KIOSK_ID} in its own window; tap a card in its demo cards strip "
            "(a simulated reader), then Enter checks the first appointment in",
            f"  tickets:  {folder / 'tickets'} (ESC/POS .bin and .png previews)",
        ]
    if plan.run_pad:
        where = "in its own window" if not plan.headless else "headless (no screen)"
        lines.append(
            f"  pad:      {PAD.device} at window W03, {where}, prompted mode: a press counts "
            f"within {PROMPT_WINDOW_S} s of a prompt"
            + (f"; clerk {CLERK} signs in by itself" if broker else "")
        )
        keys = {
            "window": "in the pad's window",
            "terminal": "here, in this terminal",
            "stdin": "on the demo's standard input (one character per key)",
        }[plan.keys_from]
        lines.append(f"  keys:     {keys}: P opens a prompt, then 1-4 rate (4 best), S pauses")
        if plan.headless:
            reasons = ", ".join(f"{i} {r}" for i, r in enumerate(DEFAULT_REASONS, start=1))
            lines.append(f"            after a 1 the pad asks why; the same keys answer: {reasons}")
        if broker:
            prompt = json.dumps({"cid": "demo-1", "ticket": "A012"})
            lines += [
                "  prompt:   as the queue-calling system does, with a cid and the ticket:",
                f"            mosquitto_pub -p {port} -q 1 -t {PAD.command('prompt')} -m '{prompt}'",
                "  read:     the reply (with the prompt id) and the rating:",
                f"            mosquitto_sub -p {port} -v -t {PAD.reply} -t '{base}/events/#'",
            ]
            if EXAMPLE.is_file():
                lines += [
                    "  example:  the same from Python, waiting for the rating:",
                    f"            {sys.executable} {EXAMPLE} --broker {url} "
                    f"--site {SITE} --device {PAD.device} --ticket A012",
                ]
    if not plan.run_pad and not plan.run_kiosk:
        lines.append("  nothing to run")
    lines += [f"  {line}" for line in extra]
    lines.append(f"  logs:     {folder}/*.log")
    if broker:
        lines.append(
            f"  report:   {typed_careterm()} site report --db sqlite:///{folder / 'site.db'}"
        )
    return "\n".join(lines)


# -- keys for the headless pad ---------------------------------------------------------------


class KeyFeeder:
    """Keys typed into the demo (its terminal, or a pipe) go to the pad's serial keypad.

    The pad opens the slave side of a pseudo-terminal as its keypad port; this writes each key
    to the master side, once the pad has opened the port (pyserial drops input on open)."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.ready = ready
        self._stop = threading.Event()
        self._pending = bytearray()
        self._saved: Any = None
        self._thread: threading.Thread | None = None

    def start(self, source: TextIO) -> None:
        fd = source.fileno()
        if os.isatty(fd):
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # keys one by one, no echo; Ctrl-C still stops the demo
        self._thread = threading.Thread(target=self._run, args=(fd,), name="demo-keys", daemon=True)
        self._thread.start()

    def _run(self, fd: int) -> None:
        eof = False
        while not self._stop.is_set():
            if not eof:
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    data = os.read(fd, 64)
                    eof = not data
                    self._pending += bytes(c for c in data.upper() if chr(c) in KEYS)
            else:
                time.sleep(0.1)
            if self._pending and self.ready():
                os.write(self.master, bytes(self._pending))
                self._pending.clear()

    def close(self, source: TextIO) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1)
        if self._saved is not None:
            termios.tcsetattr(source.fileno(), termios.TCSADRAIN, self._saved)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _pad_keypad_open(log: Path) -> bool:
    """The pad logs `buttons: ok` once its keypad port is open."""
    try:
        return "buttons: ok" in log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


# -- what the devices say --------------------------------------------------------------------


def describe_message(topic: str, payload: bytes) -> str | None:
    """One line for the demo's terminal about an event or a reply, or None."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    try:
        t = parse_device(topic, ROOT_TOPIC)  # SPEC 9.1: topics are parsed in one module
    except TopicError:
        return None
    device = t.device
    if t.leaf == "reply":
        if str(body.get("cid", "")).startswith("site-"):
            return None  # the collector's own probes
        if body.get("ok"):
            result = body.get("result") or {}
            extra = f" prompt {result['prompt']}" if "prompt" in result else ""
            return f"{device}: reply to {body.get('cid')}: ok{extra}"
        return f"{device}: reply to {body.get('cid')}: refused ({body.get('error')})"
    if not isinstance(body, dict) or "type" not in body:
        return None
    d = body.get("data") or {}
    kind = body["type"]
    if kind == "rating":
        how = "misuse, not counted" if d.get("misuse") else f"prompt {d.get('prompt')}"
        ticket = f", ticket {d['ticket']}" if d.get("ticket") else ""
        text = f"rating {d.get('score')}/{d.get('scale')} {d.get('label')} ({how}{ticket})"
    elif kind == "staff":
        text = f"staff {d.get('action')} {d.get('staff') or ''}".rstrip()
    elif kind == "alert":
        text = f"alert {d.get('kind')} ({d.get('severity')}): {d.get('message')}"
    elif kind == "checkin":
        text = f"check-in {d.get('appointment')} queue {d.get('queue_no')} ticket {d.get('ticket')}"
    else:
        text = kind
    return f"{device}: {text} [seq {body.get('seq')}]"


def _watch(port: int, out: TextIO) -> Any:
    """Print one line per event and reply the demo devices send (paho's own thread)."""

    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id="careterm-demo-watch",
        protocol=mqtt.MQTTv5,
    )

    seen: set[bytes] = set()  # at least once: a resent event is shown once

    def on_message(cl: Any, u: Any, m: Any) -> None:
        if m.payload in seen:
            return
        seen.add(m.payload)
        line = describe_message(m.topic, m.payload)
        if line:
            print(f"  > {line}", file=out, flush=True)

    c.on_message = on_message
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(
        [(device_filter(ROOT_TOPIC, leaf, site=SITE), 1) for leaf in ("events", "alerts", "reply")]
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


# -- the run ---------------------------------------------------------------------------------


def _demo_folder(value: str) -> Path:
    folder = Path(value).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(
            f"--dir {value}: the demo cannot write its files there ({e.strerror}); run it from "
            f"a folder you may write, or give one: {typed_careterm()} demo --dir ~/careterm-demo"
        ) from None
    return folder


def _lock_folder(folder: Path) -> int:
    """One demo per folder: a second one would rewrite the first one's configuration and
    broker files and run a second pad on the same outbox. Released when the process ends."""
    fd = os.open(folder / ".demo.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(
            f"another careterm demo is running in {folder}: stop it (Ctrl-C in its terminal), "
            "or run this one elsewhere with --dir"
        ) from None
    return fd


def _start_broker(broker: Broker) -> bool:
    """Start the demo's mosquitto; False (with what went wrong) when it would not start."""
    print(f"demo: starting mosquitto on 127.0.0.1:{broker.port} ...", flush=True)
    try:
        broker.start()
    except (RuntimeError, AssertionError, OSError) as e:
        broker.stop()
        print(
            f"demo: mosquitto did not start ({e}); going on without a broker: events wait in "
            f"each outbox. Its files: {broker.dir}",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True


def cmd_demo(args: argparse.Namespace) -> int:
    folder = _demo_folder(args.dir)
    lock = _lock_folder(folder)
    try:
        return _run_demo(args, folder)
    finally:
        os.close(lock)


def _run_demo(args: argparse.Namespace, folder: Path) -> int:
    screen = detect_screen()
    plan = plan_demo(args, screen, os.isatty(sys.stdin.fileno()) if sys.stdin else False)
    if args.only == "kiosk" and plan.headless:
        why = "--headless" if args.headless else screen.detail
        raise UsageError(
            f"the kiosk is a touchscreen app and needs a screen someone sees ({why}); "
            f"run `{typed_careterm()} demo --only pad` here, or the demo on a desktop"
        )
    if plan.run_kiosk and importlib.util.find_spec("kivy") is None:  # a device install without UI
        plan = Plan(screen, plan.headless, plan.run_pad, False, plan.keys_from)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    mosquitto = shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()
    broker = Broker(folder / "broker") if mosquitto else None
    port = broker.port if broker else 1883
    url = f"mqtt://127.0.0.1:{port}"
    feeder = KeyFeeder(lambda: _pad_keypad_open(folder / "pad.log")) if plan.headless else None
    files = build_site(folder, url, keypad=feeder.path if feeder else "")
    (folder / "pad.log").unlink(missing_ok=True)  # `buttons: ok` must come from this run

    def spawn(name: str, cmd: list[str], **env: str) -> subprocess.Popen[bytes]:
        logf = open(folder / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        speaker = os.environ.get(SPEAKER_ENV) or ("player" if args.sound else "sim")
        p = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            env={**os.environ, SPEAKER_ENV: speaker, **env},
        )
        children.append((name, p))
        return p

    me = [sys.executable, "-m", "careterm"]
    watcher = None
    console: list[str] = []
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    no_broker = "mosquitto is not installed"
    try:
        if broker is not None and not _start_broker(broker):  # its log: broker/mosquitto.log
            broker, no_broker = None, "mosquitto did not start, see above"
        if broker is not None:
            _publish_retained(port, files)
            _create_site_db(folder / "site.db")
            spawn(
                "collector",
                me
                + [
                    "site",
                    "collect",
                    "--broker",
                    url,
                    "--db",
                    f"sqlite:///{folder / 'site.db'}",
                ],
            )
            console = _start_console(folder, files, spawn, me)
            watcher = _watch(port, sys.stdout)
        if plan.run_pad:
            spawn(
                "pad",
                me
                + ["pad", "--config", str(files["pad"])]
                + (["--headless"] if plan.headless else []),
                CARETERM_PAD_WINDOW=os.environ.get("CARETERM_PAD_WINDOW", "1024x600"),
            )
        if plan.run_kiosk:
            spawn("kiosk", me + ["kiosk", "--config", str(files["kiosk"]), "--windowed"])
        if broker is not None and plan.run_pad:
            threading.Thread(target=_sign_in_when_online, args=(port,), daemon=True).start()

        print(summary(plan, folder, url, port, broker is not None, console, no_broker), flush=True)
        if feeder is not None and plan.run_pad:
            feeder.start(sys.stdin)
        rc = _wait(children, folder, stop, args.duration)
    finally:
        # Devices first, so their `offline`/`shutdown` reaches the broker before it stops.
        for _name, p in reversed(children):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if watcher is not None:
            watcher.loop_stop()
        if broker is not None:
            broker.stop()
        if feeder is not None:
            feeder.close(sys.stdin)
    return rc


def _start_console(
    folder: Path, files: dict[str, Path], spawn: Callable[..., object], me: list[str]
) -> list[str]:
    """The site console over the demo's database, with a demo login; lines for the summary."""
    # The console is the optional `site` extra (Starlette): a device install runs without it.
    try:
        import central.dashboard.server  # noqa: F401
        from central.dashboard.users import hash_password, read_users, write_users
    except ModuleNotFoundError:
        return ["console:  not installed (pip install 'careterm[site]')"]

    users, login = folder / "console-users.txt", folder / "console-login.txt"
    password = login.read_text().strip() if login.exists() else ""
    if not password or "demo" not in read_users(users):
        password = secrets.token_urlsafe(9)
        write_users(users, {"demo": hash_password(password)})
        login.write_text(password + "\n")
        os.chmod(login, 0o600)
    port = 8080
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
    except OSError:
        port = free_port()
    spawn(
        "console",
        me
        + ["site", "dashboard", "--db", f"sqlite:///{folder / 'site.db'}"]
        + ["--listen", f"127.0.0.1:{port}", "--users", str(users), "--staff", str(files["staff"])]
        + ["--site-name", "careterm demo"],
    )
    return [
        f"console:  http://127.0.0.1:{port}/  (log in as demo / {password}; wall display: /wall)"
    ]


def _create_site_db(path: Path) -> None:
    """The site database made before the collector and the console start together: the
    console refuses a missing one (a wrong path), and would otherwise race the collector."""
    from central.db import open_db

    open_db(f"sqlite:///{path}").dispose()


def _wait(
    children: list[tuple[str, subprocess.Popen[bytes]]],
    folder: Path,
    stop: dict[str, bool],
    duration: float,
) -> int:
    """Until Ctrl-C, `--for` seconds, or a terminal exiting (status 1, naming its log)."""
    deadline = time.monotonic() + duration if duration else None
    while not stop["now"]:
        if deadline and time.monotonic() >= deadline:
            return 0
        for name, p in children:
            if p.poll() is not None and name in ("pad", "kiosk"):
                print(
                    f"demo: the {name} exited with status {p.returncode}; see "
                    f"{folder / (name + '.log')}",
                    file=sys.stderr,
                )
                return 1
        time.sleep(0.2)
    return 0
