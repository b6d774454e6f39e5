"""`provision broker` output: the files SPEC 7 lists, absolute paths, one authenticated listener."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from tests.conftest import run_careterm


def conf_lines(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.append((key, value))
    return out


def test_broker_folder_is_complete_absolute_and_closed(tmp_path):
    ca, out = tmp_path / "ca", tmp_path / "broker"
    assert run_careterm("provision", "ca", "init", "--dir", str(ca)).returncode == 0
    res = run_careterm(
        "provision",
        "broker",
        "--ca",
        str(ca),
        "--site",
        "east",
        "--out",
        str(out),
        "--host",
        "mqtt.east.local",
        "--port",
        "18883",
        "--bind",
        "10.1.2.3",
    )
    assert res.returncode == 0, res.stderr
    for name in ("mosquitto.conf", "acl", "ca.crt", "server.crt", "server.key"):
        assert (out / name).is_file(), name
    for role in ("collector", "alerts", "roster", "dashboard", "queue"):
        assert (out / f"{role}.crt").is_file(), role
        assert stat.S_IMODE((out / f"{role}.key").stat().st_mode) == 0o600
        assert f"{role}.crt/.key: identity '{role}.east'" in res.stdout
    assert not (out / "site-service.crt").exists()
    key_mode = stat.S_IMODE((out / "server.key").stat().st_mode)
    if key_mode == 0o640:  # as root: readable by the user Mosquitto drops to, nobody else
        assert os.geteuid() == 0
        assert grp.getgrgid((out / "server.key").stat().st_gid).gr_name == "mosquitto"
    else:
        assert key_mode == 0o600

    conf = conf_lines(out / "mosquitto.conf")
    keys = [k for k, _ in conf]
    assert keys.count("listener") == 1 and dict(conf)["listener"] == "18883 10.1.2.3"
    settings = dict(conf)
    assert settings["require_certificate"] == "true"
    assert settings["use_identity_as_username"] == "true"
    assert settings["use_username_as_clientid"] == "true"  # SPEC 9.1
    assert int(settings["max_queued_messages"]) >= 20_000 * 10
    assert int(settings["max_queued_bytes"]) >= 20_000 * 10 * 1024
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"
    assert settings["set_tcp_nodelay"] == "true"  # BENCHMARKS.md: Nagle doubles p99
    for key in ("acl_file", "cafile", "certfile", "keyfile", "persistence_location"):
        path = Path(settings[key])
        assert path.is_absolute() and path.exists(), key
    assert "password_file" not in settings

    acl = (out / "acl").read_text()
    rules = [ln for ln in acl.splitlines() if ln and not ln.startswith("#")]
    assert not any("%c" in ln for ln in rules)
    assert all(
        "careterm/east/" in ln or ln.startswith("user ") or ln == "topic deny #" for ln in rules
    )
    device_rules = rules[: rules.index("user collector.east")]
    assert all(ln.startswith("pattern ") for ln in device_rules)
    assert {ln.split()[1] for ln in device_rules if "%u" not in ln} == {"read"}
    # SPEC 9.1: exactly one level below events/alerts, never `#`, for devices
    assert "pattern write careterm/east/%u/events/+" in device_rules
    assert "pattern write careterm/east/%u/alerts/+" in device_rules
    assert not any(ln.endswith("#") for ln in device_rules)


def test_provision_broker_refuses_a_bad_bind_address_and_collector_count(tmp_path):
    ca = tmp_path / "ca"
    assert run_careterm("provision", "ca", "init", "--dir", str(ca)).returncode == 0
    base = ["provision", "broker", "--ca", str(ca), "--site", "main", "--host", "b"]
    res = run_careterm(*base, "--out", str(tmp_path / "b1"), "--bind", "10.0.0.1 extra")
    assert res.returncode == 2 and "--bind" in res.stderr
    res = run_careterm(*base, "--out", str(tmp_path / "b2"), "--collectors", "0")
    assert res.returncode == 2 and "--collectors" in res.stderr
    res = run_careterm(*base, "--out", str(tmp_path / "b3"), "--collectors", "3")
    assert res.returncode == 0, res.stderr
    for stem in ("collector", "collector-2", "collector-3"):
        assert (tmp_path / "b3" / f"{stem}.crt").is_file()
    acl = (tmp_path / "b3" / "acl").read_text()
    assert "user collector-3.main" in acl and "user collector-4.main" not in acl
