"""The systemd units and udev rules in systemd/: valid for systemd, locked down, role-specific."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from provisioning.install import ROLE_GROUPS, UNITS, render_unit

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), defaultdict(list))
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line}"
        current[key.strip()].append(value.strip())
    return sections


@pytest.mark.parametrize("role", sorted(UNITS))
def test_unit_passes_systemd_analyze_verify(role, tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed; test_unit_keys checks the units offline")
    # verify checks that ExecStart exists: render the unit as install does, for this venv
    unit = tmp_path / UNITS[role]
    unit.write_bytes(render_unit(role, str(Path(sys.executable).with_name("careterm"))))
    res = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and only warns: any output is a finding
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


@pytest.mark.parametrize("role", sorted(UNITS))
def test_units_exposure_as_systemd_rates_it_stays_low(role, tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / UNITS[role]
    unit.write_bytes(render_unit(role, str(Path(sys.executable).with_name("careterm"))))
    res = subprocess.run(
        [exe, "security", "--offline=true", str(unit)], capture_output=True, text=True, timeout=60
    )
    if "--offline" in res.stderr:
        pytest.skip("this systemd-analyze cannot rate a unit file offline")
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", res.stdout)
    assert m, res.stdout + res.stderr
    # 0 is a fully sandboxed service, 10 an unprotected one; a kiosk needs real hardware
    assert float(m.group(1)) <= 3.0, res.stdout


@pytest.mark.parametrize("role", sorted(UNITS))
def test_unit_keys(role):
    unit = parse_unit((SYSTEMD / UNITS[role]).read_text())
    svc = unit["Service"]

    def one(key: str) -> str:
        assert len(svc[key]) == 1, f"{key}: {svc[key]}"
        return svc[key][0]

    assert one("Type") == "notify"
    assert int(one("WatchdogSec")) >= 10
    assert one("Restart") == "on-failure"
    assert one("User") == "careterm"
    assert set(one("SupplementaryGroups").split()) == set(ROLE_GROUPS[role])
    for key, want in (
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ReadWritePaths", "/var/lib/careterm"),
        ("StateDirectory", "careterm"),
        ("CacheDirectory", "careterm"),  # escpos_cache: $CACHE_DIRECTORY under ProtectSystem
        ("ConfigurationDirectory", "careterm"),
        ("PrivateDevices", "no"),
        ("DevicePolicy", "closed"),
        ("CapabilityBoundingSet", ""),
        ("LimitCORE", "0"),  # the process's memory holds patients: never a core file
    ):
        assert one(key) == want, key
    # ProtectClock would forbid adjtimex(2), which clock_synced() needs to read NTP state
    assert "ProtectClock" not in svc
    assert "@clock" not in one("SystemCallFilter")
    allowed = {v.split()[0] for v in svc["DeviceAllow"]}
    assert {"char-ttyUSB", "char-ttyACM", "char-input", "char-drm"} <= allowed
    assert ("char-usb_device" in allowed) == (role == "kiosk")  # only the kiosk has a printer
    env = dict(v.split("=", 1) for v in svc["Environment"])
    assert env["KIVY_WINDOW"] == "sdl2" and env["SDL_VIDEODRIVER"] == "kmsdrm"
    assert env["KIVY_HOME"].startswith("/var/lib/careterm/")  # writable under ProtectSystem
    assert one("TTYPath") == "/dev/tty1"
    assert "--blank 0" in one("ExecStartPre")
    cmd = "kiosk" if role == "kiosk" else "pad"
    assert one("ExecStart").split()[:2] == ["/opt/careterm/.venv/bin/careterm", cmd]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "getty@tty1.service" in unit["Unit"]["Conflicts"]


RULE_KEY = re.compile(
    r'^(?P<key>[A-Z_]+)(\{(?P<attr>[A-Za-z0-9_]+)\})?(?P<op>==|!=|\+=|:=|=)"(?P<value>[^"]*)"$'
)
MATCH_KEYS = {"SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ENV", "ATTR", "ATTRS", "DRIVERS", "ACTION"}
ASSIGN_KEYS = {"GROUP", "MODE", "SYMLINK", "OWNER", "TAG", "ENV"}


def test_udev_rules_are_well_formed_and_grant_groups_only():
    rules = [
        ln
        for ln in (SYSTEMD / "99-careterm.rules").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert rules
    groups = set()
    for rule in rules:
        parts = [p.strip() for p in rule.split(", ")]
        has_match = False
        for part in parts:
            m = RULE_KEY.match(part)
            assert m, f"cannot parse {part!r} in: {rule}"
            key, op, value = m["key"], m["op"], m["value"]
            if op in ("==", "!="):
                assert key in MATCH_KEYS, part
                has_match = True
            else:
                assert key in ASSIGN_KEYS, part
                if key == "MODE":
                    assert value == "0660", f"devices are for their group only: {rule}"
                if key == "GROUP":
                    groups.add(value)
                if key == "SYMLINK":
                    assert value.startswith("careterm/"), rule
        assert has_match, f"a rule without a match applies to every device: {rule}"
    assert groups == {"dialout", "input", "lp"}
