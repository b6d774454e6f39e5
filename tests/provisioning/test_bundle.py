"""`provision device`: the bundle a technician carries to a new device."""

from __future__ import annotations

import io
import stat
import tarfile
import tomllib
from pathlib import Path

import pytest

from provisioning.bundle import MEMBERS, BundleError, read_bundle, write_bundle
from terminal.config import parse_config
from tests.conftest import run_careterm


def members(bundle: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle) as tar:
        return {m.name: m for m in tar.getmembers()}


def member(bundle: Path, name: str) -> bytes:
    with tarfile.open(bundle) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def provision(
    ca: Path,
    out: Path,
    *args: str,
    device_id: str = "pad-w03",
    role: str = "rating_pad",
    site: str = "main",
):
    """`careterm provision device` with the CA `ca`, the bundle written to `out`."""
    return run_careterm(
        "provision",
        "device",
        "--ca",
        str(ca),
        "--id",
        device_id,
        "--role",
        role,
        "--site",
        site,
        "--broker",
        "mqtts://broker.hospital.local:8883",
        "--out",
        str(out),
        *args,
    )


def test_pad_bundle_holds_a_valid_config_pointing_at_installed_paths(ca, tmp_path):
    out = tmp_path / "pad.tar.gz"
    res = provision(ca, out, "--window", "W03", "--window-name", "收费处 3号窗口")
    assert res.returncode == 0, res.stderr
    assert set(members(out)) == set(MEMBERS)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert members(out)["device.key"].mode == 0o600
    data = tomllib.loads(member(out, "device.toml").decode())
    cfg = parse_config(data)
    assert (cfg.device.id, cfg.device.role, cfg.device.site) == ("pad-w03", "rating_pad", "main")
    assert cfg.mqtt.url == "mqtts://broker.hospital.local:8883"
    assert (cfg.mqtt.ca_file, cfg.mqtt.cert_file, cfg.mqtt.key_file) == (
        "/etc/careterm/ca.crt",
        "/etc/careterm/device.crt",
        "/etc/careterm/device.key",
    )
    assert cfg.privacy.salt_file == "/etc/careterm/site.salt"
    assert (cfg.window.id, cfg.window.name) == ("W03", "收费处 3号窗口")
    assert "kiosk" not in data and "printer" not in data
    assert "buttons" in data


def test_kiosk_bundle_has_kiosk_sections_and_the_sites_salt(ca, tmp_path):
    assert provision(ca, tmp_path / "a.tar.gz", "--window", "W01").returncode == 0
    res = provision(ca, tmp_path / "k.tar.gz", device_id="kiosk-01", role="kiosk")
    assert res.returncode == 0, res.stderr
    data = tomllib.loads(member(tmp_path / "k.tar.gz", "device.toml").decode())
    assert {"card_reader", "printer", "kiosk"} <= set(data)
    assert "window" not in data and "buttons" not in data and "rating" not in data
    salt = member(tmp_path / "k.tar.gz", "site.salt")
    assert len(salt.strip()) == 64 and bytes.fromhex(salt.strip().decode())
    # one salt per site: created on first use, the same in every later bundle
    assert salt == member(tmp_path / "a.tar.gz", "site.salt") == (ca / "site.salt").read_bytes()
    assert stat.S_IMODE((ca / "site.salt").stat().st_mode) == 0o600


def test_kiosk_bundle_writes_the_printers_usb_ids_in_hex_as_hw_list_shows_them(ca, tmp_path):
    """SPEC 3 writes `usb_vendor = 0x0416`, and `careterm hw list` shows 0416:5011; the bundle
    wrote 1046 and 20497, which a technician comparing the two would edit wrongly."""
    res = provision(ca, tmp_path / "k.tar.gz", "--set", "printer.usb_product=0x5743", role="kiosk")
    assert res.returncode == 0, res.stderr
    text = member(tmp_path / "k.tar.gz", "device.toml").decode()
    assert "\nusb_vendor = 0x0416\n" in text and "\nusb_product = 0x5743\n" in text, text
    cfg = parse_config(tomllib.loads(text))
    assert (cfg.printer.usb_vendor, cfg.printer.usb_product) == (0x0416, 0x5743)


def test_set_overrides_any_key_and_is_validated(ca, tmp_path):
    res = provision(
        ca,
        tmp_path / "p.tar.gz",
        "--window",
        "W07",
        "--set",
        "buttons.device=/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0",
        "--set",
        "buttons.baudrate=19200",
        "--set",
        "rating.mode=free",
    )
    assert res.returncode == 0, res.stderr
    cfg = parse_config(tomllib.loads(member(tmp_path / "p.tar.gz", "device.toml").decode()))
    assert cfg.buttons.device.endswith("if00-port0") and cfg.buttons.baudrate == 19200
    assert cfg.rating.mode == "free"
    bad = provision(ca, tmp_path / "q.tar.gz", "--window", "W07", "--set", "buttons.baudrate=fast")
    assert bad.returncode == 2
    assert "buttons.baudrate" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "q.tar.gz").exists()
    for key in ("device.id=kiosk-09", "mqtt.cert_file=/tmp/x.crt", "device.role=kiosk"):
        res = provision(ca, tmp_path / "r.tar.gz", "--window", "W07", "--set", key)
        assert res.returncode == 2 and key.split("=")[0] in res.stderr, res.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["--id", "Pad_W03"], "--id"),
        (["--site", "Main Hospital"], "--site"),
        (["--window", ""], "--window"),
        (["--broker", "http://broker"], "mqtt.url"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(ca, tmp_path, args, says):
    base = {
        "--id": "pad-w03",
        "--role": "rating_pad",
        "--site": "main",
        "--broker": "mqtts://b:8883",
        "--window": "W03",
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in base.items() for x in kv]
    res = run_careterm(
        "provision", "device", "--ca", str(ca), *flat, "--out", str(tmp_path / "x.tar.gz")
    )
    assert res.returncode == 2
    assert says in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_read_bundle_rejects_tampering(ca, tmp_path):
    assert provision(ca, tmp_path / "pad.tar.gz", "--window", "W03").returncode == 0
    assert (
        provision(ca, tmp_path / "kiosk.tar.gz", device_id="kiosk-01", role="kiosk").returncode == 0
    )
    good = {n: member(tmp_path / "pad.tar.gz", n) for n in MEMBERS}
    assert read_bundle(tmp_path / "pad.tar.gz").config.device.id == "pad-w03"

    swapped = dict(good, **{"device.crt": member(tmp_path / "kiosk.tar.gz", "device.crt")})
    write_bundle(tmp_path / "swapped.tar.gz", swapped)
    with pytest.raises(BundleError, match="kiosk-01"):
        read_bundle(tmp_path / "swapped.tar.gz")

    wrong_key = dict(good, **{"device.key": member(tmp_path / "kiosk.tar.gz", "device.key")})
    write_bundle(tmp_path / "key.tar.gz", wrong_key)
    with pytest.raises(BundleError, match="does not belong"):
        read_bundle(tmp_path / "key.tar.gz")

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../etc/passwd")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    (tmp_path / "evil.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(BundleError, match="unexpected member"):
        read_bundle(tmp_path / "evil.tar.gz")


def test_a_broker_name_no_broker_certificate_carries_is_flagged(ca, tmp_path):
    res = run_careterm(
        "provision",
        "broker",
        "--ca",
        str(ca),
        "--site",
        "main",
        "--out",
        str(tmp_path / "broker"),
        "--host",
        "mqtt.hospital.local",
        "--host",
        "10.0.0.5",
    )
    assert res.returncode == 0, res.stderr
    good = run_careterm(
        "provision",
        "device",
        "--ca",
        str(ca),
        "--id",
        "kiosk-01",
        "--role",
        "kiosk",
        "--site",
        "main",
        "--broker",
        "mqtts://10.0.0.5:8883",
        "--out",
        str(tmp_path / "a.tar.gz"),
    )
    assert good.returncode == 0 and "warning" not in good.stderr
    typo = run_careterm(
        "provision",
        "device",
        "--ca",
        str(ca),
        "--id",
        "kiosk-02",
        "--role",
        "kiosk",
        "--site",
        "main",
        "--broker",
        "mqtts://mqtt.hospital.lcoal:8883",
        "--out",
        str(tmp_path / "b.tar.gz"),
    )
    assert typo.returncode == 0  # a name the broker may get later: warn, do not refuse
    assert "mqtt.hospital.lcoal" in typo.stderr and "10.0.0.5, mqtt.hospital.local" in typo.stderr
