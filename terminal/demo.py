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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from terminal.privacy import card_token, mask_name

log = logging.getLogger("careterm.demo")

SITE = "demo"
ROOT_TOPIC = "careterm"

# Demo patients: ID numbers with valid ISO 7064 check digits (fictional people).
DEMO_PATIENTS = [
    ("110101199003077774", "张三", "id_card"),
    ("440106198512120033", "李四", "id_card"),
    ("6222020011223344", "王五", "medical_card"),
    ("310115197001012009", "赵六", "id_card"),
]
DEPARTMENTS = [
    (
        "cardio",
        "心内科",
        "Cardiology",
        "门诊楼3层",
        "电梯右转",
        "李明",
        "主任医师",
        "门诊3楼 305诊室",
    ),
    (
        "resp",
        "呼吸内科",
        "Respiratory Medicine",
        "门诊楼3层",
        "电梯左转",
        "陈静",
        "副主任医师",
        "门诊3楼 312诊室",
    ),
    (
        "ortho",
        "骨科",
        "Orthopaedics",
        "门诊楼2层",
        "扶梯正对面",
        "周强",
        "主治医师",
        "门诊2楼 208诊室",
    ),
    ("peds", "儿科", "Paediatrics", "门诊楼1层", "大厅东侧", "吴芳", "主任医师", "门诊1楼 105诊室"),
    (
        "derm",
        "皮肤科",
        "Dermatology",
        "门诊楼4层",
        "电梯右转",
        "郑华",
        "主治医师",
        "门诊4楼 402诊室",
    ),
]
STAFF = [
    {"staff": "E1024", "name": "王芳", "title": "收费员", "card": "S1024"},
    {"staff": "E2048", "name": "刘洋", "title": "挂号员", "card": "S2048"},
]


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


def id_check_digit(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


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
    tz = datetime.now().astimezone().tzinfo
    now = datetime.now(tz).replace(second=0, microsecond=0)
    appointments: list[dict[str, Any]] = []
    # Slots around "now" so the demo patients can check in whenever the demo runs.
    offsets = [0, 15, 90, -45]
    for i, (number, name, kind) in enumerate(DEMO_PATIENTS):
        dep = DEPARTMENTS[i % len(DEPARTMENTS)]
        start = now + timedelta(minutes=offsets[i])
        if start.date() != today:
            start = now
        appointments.append(
            {
                "id": f"A{today:%Y%m%d}-{i + 1:04d}",
                "token": card_token(salt, kind, number),
                "name": _roster_name(name),
                "department_id": dep[0],
                "department": dep[1],
                "doctor": dep[5],
                "room": dep[7],
                "slot_start": start.isoformat(timespec="seconds"),
                "slot_end": (start + timedelta(minutes=30)).isoformat(timespec="seconds"),
                "queue_no": f"{'ABCDE'[i % 5]}{i + 21:03d}",
            }
        )
    roster = {
        "v": 1,
        "date": today.isoformat(),
        "generated": datetime.now(tz).isoformat(timespec="seconds"),
        "appointments": appointments,
    }
    directory = {
        "v": 1,
        "departments": [
            {"id": d[0], "name": d[1], "name_en": d[2], "floor": d[3], "location": d[4]}
            for d in DEPARTMENTS
        ],
        "doctors": [
            {
                "name": d[5],
                "title": d[6],
                "department_id": d[0],
                "today": ["08:00-12:00", "14:00-17:00"],
                "bio": "",
            }
            for d in DEPARTMENTS
        ],
    }
    survey = {
        "v": 1,
        "id": "opd-demo",
        "questions": [
            {
                "id": "q1",
                "text": "您对挂号流程满意吗?",
                "text_en": "Were you satisfied with registration?",
                "scale": 5,
            },
            {
                "id": "q2",
                "text": "您对候诊环境满意吗?",
                "text_en": "Were you satisfied with the waiting area?",
                "scale": 5,
            },
            {
                "id": "q3",
                "text": "您愿意向亲友推荐本院吗?",
                "text_en": "Would you recommend us?",
                "scale": 5,
            },
        ],
    }
    staff = [
        {
            "staff": s["staff"],
            "name": s["name"],
            "title": s["title"],
            "token": card_token(salt, "staff_card", s["card"][1:]),
            "photo": None,
        }
        for s in STAFF
    ]
    files = {
        "salt": salt_file,
        "roster": folder / "roster.json",
        "directory": folder / "directory.json",
        "survey": folder / "survey.json",
        "staff": folder / "staff.json",
    }
    for name, body in (
        ("roster", roster),
        ("directory", directory),
        ("survey", survey),
        ("staff", staff),
    ):
        files[name].write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    files["kiosk"] = folder / "kiosk.toml"
    files["kiosk"].write_text(
        f"""# careterm demo kiosk (simulated card reader and printer)
[device]
id = "kiosk-01"
role = "kiosk"
site = "{SITE}"
data_dir = "{folder / "kiosk-data"}"

[mqtt]
url = "{broker_url}"

[privacy]
salt_file = "{salt_file}"

[card_reader]
driver = "keyboard"

[printer]
driver = "sim"
device = "{folder / "tickets"}"
columns = 48

[kiosk]
fullscreen = false
roster_file = "{files["roster"]}"
""",
        encoding="utf-8",
    )
    files["pad"] = folder / "pad.toml"
    files["pad"].write_text(
        f"""# careterm demo rating pad (keys 1-4 on the keyboard, P prompts, S pauses)
[device]
id = "pad-w03"
role = "rating_pad"
site = "{SITE}"
data_dir = "{folder / "pad-data"}"

[mqtt]
url = "{broker_url}"

[privacy]
salt_file = "{salt_file}"

[window]
id = "W03"
name = "收费处 3号窗口"

[rating]
mode = "free"

[buttons]
driver = "keyboard"

[card_reader]
driver = "none"
""",
        encoding="utf-8",
    )
    return files


def _roster_name(name: str) -> str:
    masked = mask_name(name) or ""
    return masked if len(name) < 3 else name[0] + "*" * (len(name) - 2) + name[-1]


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
                f"{ROOT_TOPIC}/{SITE}/{name}", files[name].read_bytes(), qos=1, retain=True
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
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"{ROOT_TOPIC}/{SITE}/pad-w03/status", 1)
    try:
        c.connect("127.0.0.1", port)
    except OSError:
        return
    c.loop_start()
    try:
        if online.wait(timeout):
            body = json.dumps({"cid": "demo-sign-in", "action": "sign_in", "staff": "E1024"})
            c.publish(f"{ROOT_TOPIC}/{SITE}/pad-w03/cmd/staff", body, qos=1).wait_for_publish(5)
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

    me = [sys.executable, "-m", "terminal"]
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
        f"  report:   careterm site report --db sqlite:///{folder / 'site.db'}",
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


def _wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the demo broker did not start on port {port}")
