"""`scripts/bootstrap --device ROLE`: a device gets only what its role runs."""

from __future__ import annotations

import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, Broker, careterm_cmd, wait_for
from tests.rating_pad.conftest import BASE, STAFF, send_command, wait_subscribed

BOOTSTRAP = ROOT / "scripts" / "bootstrap"
DEV_ONLY = ("xvfb", "xauth", "mosquitto", "mosquitto-clients")
# What pip needs to build evdev, which PyPI ships as source only: a fresh Debian has none of it.
EVDEV_BUILD = ("gcc", "python3-dev", "linux-libc-dev")


def dry_run(*args: str) -> dict[str, str]:
    r = subprocess.run(
        [str(BOOTSTRAP), *args, "--dry-run"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    return dict(line.split(": ", 1) for line in r.stdout.splitlines())


@pytest.mark.parametrize("role", ["kiosk", "pad", "pad-headless"])
def test_a_device_gets_no_dev_extras_no_virtual_display_and_no_broker(role: str) -> None:
    plan = dry_run("--device", role)
    debs = plan["debian packages"].split()
    assert not set(DEV_ONLY) & set(debs)
    assert "dev" not in plan["pip install"]
    # Kivy (the `ui` extra) and the GL, font and touch libraries only where there is a screen.
    screen = role != "pad-headless"
    assert ("[ui]" in plan["pip install"]) is screen
    assert ("libgl1-mesa-dri" in debs) is screen
    assert ("fonts-noto-cjk" in debs) is screen


def test_a_developer_gets_the_broker_the_virtual_display_and_dev_extras() -> None:
    """mosquitto-clients too: `scripts/demo` prints mosquitto_pub and mosquitto_sub lines."""
    plan = dry_run()
    assert set(DEV_ONLY) <= set(plan["debian packages"].split())
    assert plan["pip install"] == "-e .[dev]"


@pytest.mark.parametrize("role", [None, "kiosk", "pad", "pad-headless"])
def test_every_role_gets_what_pip_needs_to_build_evdev(role: str | None) -> None:
    """evdev (a dependency on Linux) has no wheel on PyPI: without a compiler, Python's headers
    and linux/input.h, `pip install` stops on a fresh Debian with "Failed building wheel"."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("evdev") for d in deps)
    plan = dry_run(*(["--device", role] if role else []))
    assert set(EVDEV_BUILD) <= set(plan["debian packages"].split())


def test_an_unknown_role_is_refused() -> None:
    r = subprocess.run(
        [str(BOOTSTRAP), "--device", "printer", "--dry-run"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "kiosk, pad or pad-headless" in r.stderr


def test_the_venv_is_made_from_debians_python_not_the_first_on_path(tmp_path: Path) -> None:
    """A pyenv `python3` first on PATH (3.11.7 here) hid that Debian 12's 3.11.2 has no
    `tarfile` `filter=`: the venv comes from /usr/bin/python3 unless PYTHON says otherwise."""
    shim = tmp_path / "python3"
    shim.write_text("#!/bin/sh\nexit 1\n")
    shim.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    r = subprocess.run(
        [str(BOOTSTRAP), "--dry-run"], capture_output=True, text=True, timeout=30, env=env
    )
    assert r.returncode == 0, r.stderr
    assert "venv python: /usr/bin/python3" in r.stdout.splitlines()
    env["PYTHON"] = str(shim)
    r = subprocess.run(
        [str(BOOTSTRAP), "--dry-run"], capture_output=True, text=True, timeout=30, env=env
    )
    assert f"venv python: {shim}" in r.stdout.splitlines()


def test_help_is_the_header_and_nothing_of_the_code() -> None:
    r = subprocess.run([str(BOOTSTRAP), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--device pad-headless" in r.stdout
    assert "set -euo" not in r.stdout and "cd " not in r.stdout and "#" not in r.stdout


def test_what_a_device_installs_holds_no_developer_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    ui = " ".join(project["optional-dependencies"]["ui"]).lower()
    for tool in ("kivy", "matplotlib", "py-spy", "pytest", "ruff", "jsonschema"):
        assert tool not in base, tool
    assert ui.startswith("kivy") and "matplotlib" not in ui


BLOCKER = """
import importlib.abc, sys
BLOCKED = {"kivy", "matplotlib", "pytest", "psycopg", "jsonschema"}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not on a lean device", name=name)
        return None
sys.meta_path.insert(0, _Block())
"""


@pytest.mark.broker
@pytest.mark.slow
def test_a_headless_pad_runs_and_rates_without_kivy_or_dev_tools(
    broker: Broker, pty, config_writer, subscriber_factory, processes, tmp_path: Path
) -> None:
    """What `--device pad-headless` installs is enough: the pad runs with Kivy, matplotlib,
    pytest, psycopg and jsonschema unimportable, as on such a device."""
    lean = tmp_path / "lean"
    lean.mkdir()
    (lean / "sitecustomize.py").write_text(BLOCKER)
    cfg = config_writer(
        broker_url=broker.url,
        extra=f'[rating]\nmode = "prompted"\n[buttons]\ndriver = "serial"\ndevice = "{pty.path}"\n',
    )
    sub = subscriber_factory(broker.port, [f"{BASE}/#"])
    sub.publish("careterm/main/staff", STAFF, retain=True)
    log = tmp_path / "pad.log"
    processes.start(
        careterm_cmd("pad", "--headless", "--config", str(cfg)),
        log=log,
        PYTHONPATH=f"{lean}:{ROOT}",
    )
    wait_subscribed(sub)
    wait_for(lambda: "buttons: ok" in log.read_text(), 10, what="keypad open")
    wait_for(
        lambda: send_command(sub, "staff", {"action": "sign_in", "staff": "E1024"})["ok"],
        10,
        every=0.2,
        what="the clerk signed in",
    )
    assert send_command(sub, "prompt", {"ticket": "A012"})["ok"]
    time.sleep(1.0)  # a patient's press comes after min_response_ms (SPEC 9.3: 700 ms)
    pty.write(b"3")
    (rating,) = wait_for(lambda: sub.events("rating"), 10, what="the rating")
    assert rating["data"]["score"] == 3 and not rating["data"]["misuse"]
    assert "is not on a lean device" not in log.read_text()
