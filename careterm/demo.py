"""`careterm demo`: the whole product on simulated hardware, on one machine.

It writes a demo site into a folder (salt, device configs, today's roster, directory, staff,
survey), starts a private mosquitto on a free local port when `mosquitto` is on PATH
(otherwise events wait in the outbox), the site collector when available, then the kiosk and
the rating pad as child processes, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import tomli_w

from careterm.demo_data import demo_cards, demo_directory, demo_roster, demo_staff, demo_survey
from terminal.topics import Topics, site_document

log = logging.getLogger("careterm.demo")

SITE = "demo"
ROOT_TOPIC = "careterm"
PAD = Topics(ROOT_TOPIC, SITE, "pad-w03")


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
        help="no screens: the pad runs headless and the kiosk is skipped",
    )
    p.add_argument(
        "--for",
        dest="duration",
        type=float,
        default=0.0,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    p.add_argument("--only", choices=("kiosk", "pad"), help="run one terminal only")
    p.set_defaults(func=cmd_demo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_site(folder: Path, broker_url: str, today: date | None = None) -> dict[str, Path]:
    """Write the demo site's files; returns their paths by name."""
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
            "id": "kiosk-01",
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
        "rating": {"mode": "free"},
        "buttons": {"driver": "keyboard"},
        "card_reader": {"driver": "none"},
    }
    for name, body, title in (
        ("kiosk", kiosk, "careterm demo kiosk (simulated card reader and printer)"),
        ("pad", pad, "careterm demo rating pad (keys 1-4 on the keyboard, P prompts, S pauses)"),
    ):
        files[name] = folder / f"{name}.toml"
        files[name].write_text(f"# {title}\n" + tomli_w.dumps(body), encoding="utf-8")
    return files


def _publish_retained(port: int, files: dict[str, Path]) -> None:
    import paho.mqtt.client as mqtt

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
    import threading

    import paho.mqtt.client as mqtt

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
            body = json.dumps({"cid": "demo-sign-in", "action": "sign_in", "staff": "E1024"})
            c.publish(PAD.command("staff"), body, qos=1).wait_for_publish(5)
    finally:
        c.loop_stop()
        c.disconnect()


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    port = _free_port() if mosquitto else 1883
    url = f"mqtt://127.0.0.1:{port}"
    files = build_site(folder, url)

    def spawn(name: str, cmd: list[str], **env: str) -> subprocess.Popen[bytes]:
        logf = open(folder / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(cmd, stdout=logf, stderr=logf, env={**os.environ, **env})
        children.append((name, p))
        return p

    me = [sys.executable, "-m", "careterm"]
    console: list[str] = []
    if mosquitto:
        conf = folder / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        spawn("mosquitto", [mosquitto, "-c", str(conf)])
        _wait_port(port)
        _publish_retained(port, files)
        try:
            import central.cli  # noqa: F401

            spawn(
                "collector",
                me
                + ["site", "collect", "--broker", url, "--db", f"sqlite:///{folder / 'site.db'}"],
            )
            console = _start_console(folder, files, spawn, me)
        except ModuleNotFoundError:
            pass
    else:
        print(
            "demo: mosquitto is not installed; events wait in the outbox "
            "(`careterm outbox stats --config demo-data/pad.toml`).",
            file=sys.stderr,
        )

    run_kiosk = not args.headless and args.only != "pad"
    try:
        import kiosk.cli  # noqa: F401
    except ModuleNotFoundError:
        run_kiosk = False
    if args.only != "kiosk":
        spawn(
            "pad",
            me + ["pad", "--config", str(files["pad"])] + (["--headless"] if args.headless else []),
            CARETERM_PAD_WINDOW=os.environ.get("CARETERM_PAD_WINDOW", "1024x600"),
        )
    if run_kiosk:
        spawn("kiosk", me + ["kiosk", "--config", str(files["kiosk"]), "--windowed"])
    if mosquitto and args.only != "kiosk":
        import threading

        threading.Thread(target=_sign_in_when_online, args=(port,), daemon=True).start()

    print(
        f"careterm demo running (Ctrl-C stops it)\n"
        f"  broker:   {url}{'' if mosquitto else ' (not running)'}\n"
        f"  watch:    mosquitto_sub -p {port} -t 'careterm/#' -v\n"
        f"  kiosk:    {'on screen; card reader simulated: see the demo cards panel' if run_kiosk else 'off'}\n"
        f"  pad:      {'headless' if args.headless else 'on screen'}; keys 1-4 rate, P prompts, S pauses\n"
        f"  tickets:  {folder / 'tickets'} (ESC/POS .bin and .png previews)\n"
        f"  logs:     {folder}/*.log\n"
        f"  report:   careterm site report --db sqlite:///{folder / 'site.db'}"
        + "".join(f"\n  {line}" for line in console),
        flush=True,
    )

    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = time.monotonic() + args.duration if args.duration else None
    rc = 0
    try:
        while not stop["now"]:
            if deadline and time.monotonic() >= deadline:
                break
            for name, p in children:
                if p.poll() is not None and name in ("pad", "kiosk"):
                    print(
                        f"demo: the {name} exited with status {p.returncode}; see "
                        f"{folder / (name + '.log')}",
                        file=sys.stderr,
                    )
                    stop["now"] = True
                    rc = 1
            time.sleep(0.2)
    finally:
        # Devices first, so their `offline`/`shutdown` reaches the broker before it stops.
        for _name, p in reversed(children):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return rc


def _start_console(
    folder: Path, files: dict[str, Path], spawn: Callable[..., object], me: list[str]
) -> list[str]:
    """The site console over the demo's database, with a demo login; lines for the summary."""
    try:
        import central.dashboard.server  # noqa: F401 - the optional `site` extra
    except ModuleNotFoundError:
        return ["console:  not installed (pip install 'careterm[site]')"]
    from central.dashboard.users import hash_password, read_users, write_users

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
        port = _free_port()
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


def _wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the demo broker did not start on port {port}")
