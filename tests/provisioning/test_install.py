"""`provision install` in a scratch root: what a device gets, without touching this machine."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from terminal.config import load_config
from tests.conftest import run_careterm

ROOT_SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bundles")
    assert run_careterm("provision", "ca", "init", "--dir", str(d / "ca")).returncode == 0
    out = {}
    for device_id, role, extra in (
        ("pad-w03", "rating_pad", ["--window", "W03"]),
        (
            "kiosk-01",
            "kiosk",
            ["--set", "printer.usb_vendor=0x0fe6", "--set", "printer.usb_product=0x811e"],
        ),
    ):
        out[role] = d / f"{device_id}.tar.gz"
        res = run_careterm(
            "provision",
            "device",
            "--ca",
            str(d / "ca"),
            "--id",
            device_id,
            "--role",
            role,
            "--site",
            "main",
            "--broker",
            "mqtts://broker:8883",
            *extra,
            "--out",
            str(out[role]),
        )
        assert res.returncode == 0, res.stderr
    return out


def install(bundle: Path, root: Path):
    res = run_careterm("provision", "install", "--bundle", str(bundle), "--root", str(root))
    assert res.returncode == 0, res.stderr
    plan = json.loads((root / "careterm-install-plan.json").read_text())
    return res, plan


def test_pad_install_writes_config_identity_state_udev_and_an_enabled_unit(bundles, tmp_path):
    root = tmp_path / "root"
    res, plan = install(bundles["rating_pad"], root)
    etc = root / "etc/careterm"
    assert mode(etc) == 0o750
    for name, want in (
        ("device.toml", 0o640),
        ("device.key", 0o640),
        ("site.salt", 0o640),
        ("device.crt", 0o644),
        ("ca.crt", 0o644),
    ):
        assert mode(etc / name) == want, name
        assert plan["modes"][f"/etc/careterm/{name}"] == f"{want:04o}"
    # the service reads its key and salt through its group; only root may change them
    for name in ("device.toml", "device.key", "site.salt"):
        assert plan["owners"][f"/etc/careterm/{name}"] == "root:careterm"
    assert plan["owners"]["/var/lib/careterm"] == "careterm:careterm"
    assert mode(root / "var/lib/careterm") == 0o750

    # the installed config is valid and its paths exist once / is the scratch root
    cfg = load_config(etc / "device.toml")
    for path in (cfg.mqtt.ca_file, cfg.mqtt.cert_file, cfg.mqtt.key_file, cfg.privacy.salt_file):
        assert (root / path.lstrip("/")).is_file(), path

    rules = (root / "etc/udev/rules.d/99-careterm.rules").read_text()
    assert rules.startswith((ROOT_SYSTEMD / "99-careterm.rules").read_text())

    unit = root / "etc/systemd/system/careterm-pad.service"
    text = unit.read_text()
    exec_start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    exe = exec_start.split("=", 1)[1].split()[0]
    assert Path(exe).is_file() and exe.endswith("/careterm")  # the careterm that ran install
    assert not (root / "etc/systemd/system/careterm-kiosk.service").exists()
    link = root / "etc/systemd/system/multi-user.target.wants/careterm-pad.service"
    assert link.is_symlink() and str(link.readlink()) == "/etc/systemd/system/careterm-pad.service"

    cmds = [" ".join(c) for c in plan["commands"]]
    assert any(c.startswith("useradd --system") and c.endswith(" careterm") for c in cmds)
    groups = next(c for c in cmds if c.startswith("usermod")).split()[-2].split(",")
    assert set(groups) == {"video", "render", "input", "dialout", "audio"}  # a pad prints nothing
    assert cmds[-3:] == [
        "systemctl daemon-reload",
        "systemctl enable careterm-pad.service",
        "systemctl restart careterm-pad.service",
    ]
    assert "would run: systemctl restart careterm-pad.service" in res.stdout


def test_kiosk_install_grants_the_printer_and_names_its_usb_ids(bundles, tmp_path):
    root = tmp_path / "root"
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "cmdline.txt").write_text("console=serial0,115200 root=PARTUUID=1234 rootwait\n")
    _, plan = install(bundles["kiosk"], root)
    assert (root / "etc/systemd/system/careterm-kiosk.service").exists()
    groups = next(c for c in plan["commands"] if c[0] == "usermod")[-2].split(",")
    assert "lp" in groups
    rules = (root / "etc/udev/rules.d/99-careterm.rules").read_text()
    assert 'ATTR{idVendor}=="0fe6", ATTR{idProduct}=="811e", GROUP="lp"' in rules
    # no console blanking behind the kiosk after the next boot; edited in place (FAT: no chmod)
    assert (boot / "cmdline.txt").read_text() == (
        "console=serial0,115200 root=PARTUUID=1234 rootwait consoleblank=0\n"
    )
    assert plan["edited"] == ["/boot/firmware/cmdline.txt"]
    assert "/boot/firmware/cmdline.txt" not in plan["modes"]


def test_reinstall_with_another_role_disables_the_old_unit(bundles, tmp_path):
    root = tmp_path / "root"
    install(bundles["rating_pad"], root)
    (root / "etc/careterm/careterm.env").write_text("CARETERM_PAD_ARGS=--headless\n")
    _, plan = install(bundles["kiosk"], root)
    assert ["systemctl", "disable", "--now", "careterm-pad.service"] in plan["commands"]
    # the technician's own settings survive a re-install
    assert (root / "etc/careterm/careterm.env").read_text() == "CARETERM_PAD_ARGS=--headless\n"
    assert load_config(root / "etc/careterm/device.toml").device.id == "kiosk-01"


def test_reenrolling_as_another_device_sets_the_old_outbox_aside(bundles, tmp_path):
    root = tmp_path / "root"
    install(bundles["rating_pad"], root)
    (root / "var/lib/careterm/outbox.sqlite").write_bytes(b"pad-w03's unsent events")
    _, plan = install(bundles["kiosk"], root)
    assert plan["commands"][0] == ["systemctl", "stop", "careterm-pad.service"]
    [(src, dst)] = plan["moves"]
    assert src == "/var/lib/careterm" and dst.startswith("/var/lib/careterm.pad-w03-")
    assert (root / dst.lstrip("/") / "outbox.sqlite").read_bytes() == b"pad-w03's unsent events"
    assert not (root / "var/lib/careterm/outbox.sqlite").exists()
    assert any("pad-w03" in n for n in plan["notes"])
    # the same device installed again keeps its outbox
    (root / "var/lib/careterm/outbox.sqlite").write_bytes(b"kiosk-01's events")
    _, plan = install(bundles["kiosk"], root)
    assert plan["moves"] == []
    assert (root / "var/lib/careterm/outbox.sqlite").read_bytes() == b"kiosk-01's events"


def test_a_broken_bundle_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "b.tar.gz").write_bytes(b"not a tarball")
    res = run_careterm(
        "provision",
        "install",
        "--bundle",
        str(tmp_path / "b.tar.gz"),
        "--root",
        str(tmp_path / "root"),
    )
    assert res.returncode == 2
    assert "b.tar.gz" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "root").exists()


def test_on_the_real_root_only_missing_accounts_and_existing_groups_are_planned(
    bundles, monkeypatch
):
    """The plan for `/` (not applied here): no useradd for an existing user, no group the
    system lacks."""
    import grp
    import pwd

    from provisioning import install as install_module
    from provisioning.bundle import read_bundle
    from provisioning.install import ROLE_GROUPS, make_plan

    # This test's own careterm may live where a service could not run it (the refusal has
    # its own tests in test_install_access.py).
    monkeypatch.setattr(install_module, "service_access_problem", lambda *a, **k: None)

    plan = make_plan(read_bundle(bundles["kiosk"]), Path("/"))
    cmds = [c[0] for c in plan.commands]
    try:
        pwd.getpwnam("careterm")
        assert "useradd" not in cmds
    except KeyError:
        assert "useradd" in cmds
    existing = {g.gr_name for g in grp.getgrall()}
    usermod = next((c for c in plan.commands if c[0] == "usermod"), None)
    granted = set(usermod[-2].split(",")) if usermod else set()
    assert granted == set(ROLE_GROUPS["kiosk"]) & existing
    for missing in set(ROLE_GROUPS["kiosk"]) - existing:
        assert any(repr(missing) in n for n in plan.notes)


def test_a_data_dir_outside_var_lib_is_created_and_opened_to_the_service(tmp_path):
    ca = tmp_path / "ca"
    assert run_careterm("provision", "ca", "init", "--dir", str(ca)).returncode == 0
    res = run_careterm(
        "provision",
        "device",
        "--ca",
        str(ca),
        "--id",
        "pad-w09",
        "--role",
        "rating_pad",
        "--site",
        "main",
        "--broker",
        "mqtts://b:8883",
        "--window",
        "W09",
        "--set",
        "device.data_dir=/srv/careterm",
        "--out",
        str(tmp_path / "p.tar.gz"),
    )
    assert res.returncode == 0, res.stderr
    root = tmp_path / "root"
    _, plan = install(tmp_path / "p.tar.gz", root)
    assert plan["owners"]["/srv/careterm"] == "careterm:careterm"
    dropin = root / "etc/systemd/system/careterm-pad.service.d/data-dir.conf"
    assert "ReadWritePaths=/srv/careterm" in dropin.read_text().splitlines()
