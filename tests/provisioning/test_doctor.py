"""`careterm doctor` against the real site broker: a healthy device, and devices broken in turn."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.certs import SiteCA
from provisioning.doctor import system_timezone
from tests.conftest import Pty, run_careterm
from tests.provisioning.conftest import SITE

# Configs name this machine's own zone, so the timezone check passes wherever tests run;
# tests of the check itself give it their own /etc/localtime.
HOST_ZONE = system_timezone() or "UTC"

pytestmark = pytest.mark.broker

IDCARD_FIND = bytes.fromhex("aa aa aa 96 69 00 03 20 01 22")  # SPEC 6.3, byte for byte
IDCARD_NO_CARD = bytes.fromhex("aa aa aa 96 69 00 04 00 00 80 84")


def write_config(
    path: Path,
    *,
    device_id: str,
    role: str,
    port: int,
    ident: Path,
    data_dir: Path,
    host: str = "localhost",
    extra: str = "",
    cert: Path | None = None,
    key: Path | None = None,
    ca: Path | None = None,
    salt: Path | None = None,
    timezone: str = HOST_ZONE,
) -> Path:
    window = '[window]\nid = "W03"\n' if role == "rating_pad" else ""
    path.write_text(
        f"""
[device]
id = "{device_id}"
role = "{role}"
site = "{SITE}"
data_dir = "{data_dir}"
timezone = "{timezone}"

[mqtt]
url = "mqtts://{host}:{port}"
ca_file = "{ca or ident / "ca.crt"}"
cert_file = "{cert or ident / "device.crt"}"
key_file = "{key or ident / "device.key"}"

[privacy]
salt_file = "{salt or ident / "site.salt"}"

{window}
{extra}
""",
        encoding="utf-8",
    )
    return path


def doctor(config: Path, synced: str = "1"):
    res = run_careterm("doctor", "--config", str(config), CARETERM_CLOCK_SYNCED=synced)
    lines = res.stdout.strip().splitlines()
    by_name = {ln.split()[1]: ln for ln in lines}
    return res, by_name


def assert_line(by_name: dict[str, str], name: str, status: str, *words: str) -> None:
    line = by_name[name]
    assert line.split()[0] == status, line
    for w in words:
        assert w in line, f"{w!r} not in: {line}"
    if status in ("FAIL", "WARN"):
        assert "-> fix:" in line, line


@pytest.fixture
def keypad() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


@pytest.fixture
def idcard_reader() -> Iterator[Pty]:
    """A SAM reader on a pty that answers find-card with `no card` (a valid answer)."""
    p = Pty()
    stop = threading.Event()

    def answer() -> None:
        buf = b""
        while not stop.is_set():
            try:
                buf += p.read(64, timeout=0.1)
            except OSError:
                return
            if IDCARD_FIND in buf:
                buf = b""
                p.write(IDCARD_NO_CARD)

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    yield p
    stop.set()
    t.join(2)
    p.close()


class NetworkPrinter:
    """A TCP printer on localhost answering DLE EOT n with the bytes of `answers`."""

    def __init__(self) -> None:
        self.answers = {1: 0x12, 2: 0x12, 4: 0x12}  # online, cover closed, paper present
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(0.2)
        self.device = f"127.0.0.1:{self.srv.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                buf = b""
                while not self.stop.is_set():
                    try:
                        data = conn.recv(64)
                    except OSError:
                        break
                    if not data:
                        break
                    buf += data
                    while len(buf) >= 3 and buf[:2] == b"\x10\x04":
                        conn.sendall(bytes([self.answers.get(buf[2], 0x12)]))
                        buf = buf[3:]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.srv.close()


@pytest.fixture
def network_printer() -> Iterator[NetworkPrinter]:
    p = NetworkPrinter()
    yield p
    p.close()


def test_a_healthy_pad_passes_every_check(site, site_broker, tmp_path, keypad):
    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "data",
        extra=f'[buttons]\ndriver = "serial"\ndevice = "{keypad.path}"\n',
    )
    res, by = doctor(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in (
        "config",
        "data_dir",
        "salt",
        "clock",
        "certificate",
        "broker",
        "tls",
        "mqtt",
        "buttons",
    ):
        assert_line(by, name, "ok")
    assert_line(by, "mqtt", "ok", "as pad-w03")
    assert_line(by, "certificate", "ok", "pad-w03", "more days")


def test_a_healthy_kiosk_gets_answers_from_its_reader_and_printer(
    site, site_broker, tmp_path, idcard_reader, network_printer
):
    cfg = write_config(
        tmp_path / "kiosk.toml",
        device_id="kiosk-01",
        role="kiosk",
        port=site.port,
        ident=site.identity("kiosk-01"),
        data_dir=tmp_path / "data",
        extra=f'[card_reader]\ndriver = "idcard"\ndevice = "{idcard_reader.path}"\n'
        f'[printer]\ndriver = "network"\ndevice = "{network_printer.device}"\n',
    )
    res, by = doctor(cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_line(by, "card_reader", "ok", "ID card reader answers")
    assert_line(by, "printer", "ok", "reachable", "online, paper ok")

    network_printer.answers = {1: 0x12, 2: 0x32, 4: 0x72}  # paper out
    res, by = doctor(cfg)
    assert res.returncode == 1
    assert_line(by, "printer", "FAIL", "paper out", "load paper")


def test_an_invalid_config_fails_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[device]\nid = "pad-w03"\nrole = "rating_pad"\nsite = "main"\n[mqtt]\nkeepalive = 30\n'
    )
    res, by = doctor(cfg)
    assert res.returncode == 1
    assert_line(by, "config", "FAIL", "mqtt.keepalive", "unknown key")
    assert_line(by, "clock", "ok")
    assert "Traceback" not in res.stderr


def test_a_broken_device_gets_one_failing_line_with_a_fix_per_problem(site, site_broker, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=blocker / "data",
        cert=site.identity("kiosk-01") / "device.crt",
        key=site.identity("kiosk-01") / "device.key",
        salt=tmp_path / "no.salt",
        extra='[buttons]\ndriver = "serial"\ndevice = "/dev/serial/by-id/usb-no-such-keypad"\n'
        '[card_reader]\ndriver = "evdev"\ndevice = "/dev/input/by-id/no-such-reader"\n',
    )
    res, by = doctor(cfg, synced="0")
    assert res.returncode == 1
    assert_line(by, "data_dir", "FAIL", str(blocker))
    assert_line(by, "salt", "FAIL", "no.salt")
    assert_line(by, "clock", "FAIL", "timedatectl")
    assert_line(by, "certificate", "FAIL", "kiosk-01", "pad-w03")
    assert_line(by, "buttons", "FAIL", "usb-no-such-keypad", "[buttons].device")
    assert_line(by, "card_reader", "FAIL", "no-such-reader")
    assert_line(by, "mqtt", "ok", "as kiosk-01")  # the broker knows it by its certificate
    assert len(res.stdout.strip().splitlines()) == len(by)  # one line per check


def test_an_unreachable_broker_fails_and_skips_the_tls_checks(site, tmp_path):
    from tests.conftest import free_port

    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=free_port(),
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(cfg)
    assert res.returncode == 1
    assert_line(by, "broker", "FAIL", "cannot reach", "firewall")
    assert by["tls"].startswith("skip") and by["mqtt"].startswith("skip")


def test_tls_failures_say_whose_certificate_is_wrong(site, site_broker, tmp_path):
    other = SiteCA.init(tmp_path / "other-ca")
    (tmp_path / "other-ca.crt").write_bytes(other.cert_pem)
    wrong_ca = write_config(
        tmp_path / "a.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        ca=tmp_path / "other-ca.crt",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(wrong_ca)
    assert res.returncode == 1
    assert_line(by, "certificate", "FAIL", "not issued by mqtt.ca_file", "different bundles")
    assert_line(by, "tls", "FAIL", "broker certificate rejected", "two different bundles")
    assert "provision broker" not in by["tls"]

    wrong_name = write_config(
        tmp_path / "b.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        host="127.0.0.2",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(wrong_name)
    assert res.returncode == 1
    assert_line(by, "tls", "FAIL", "(it names localhost, 127.0.0.1)", "--host 127.0.0.2")

    forged = other.issue_device("pad-w03", SITE)
    (tmp_path / "f.crt").write_bytes(forged.cert)
    (tmp_path / "f.key").write_bytes(forged.key)
    os.chmod(tmp_path / "f.key", 0o600)
    stranger = write_config(
        tmp_path / "c.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        cert=tmp_path / "f.crt",
        key=tmp_path / "f.key",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(stranger)
    assert res.returncode == 1
    assert_line(by, "certificate", "FAIL", "not issued by")
    assert_line(by, "mqtt", "FAIL", "closed by the broker", "refused this device's certificate")


def test_a_certificate_close_to_expiry_warns_without_failing(site, site_broker, tmp_path):
    soon = SiteCA(site.ca).issue_device("pad-w03", SITE, days=12)
    (tmp_path / "soon.crt").write_bytes(soon.cert)
    (tmp_path / "soon.key").write_bytes(soon.key)
    (tmp_path / "soon.key").chmod(0o600)  # as installed: doctor fails a key others can read
    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        cert=tmp_path / "soon.crt",
        key=tmp_path / "soon.key",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(cfg)
    assert res.returncode == 0, res.stdout
    assert_line(by, "certificate", "WARN", "expires in 11 days", "provision device")


def test_a_plain_mqtt_device_is_checked_without_tls(broker, tmp_path):
    salt = tmp_path / "site.salt"
    salt.write_text("ab" * 32)
    salt.chmod(0o600)  # as installed: doctor fails a salt others can read
    cfg = tmp_path / "device.toml"
    cfg.write_text(
        f'[device]\nid = "pad-w03"\nrole = "rating_pad"\nsite = "main"\n'
        f'data_dir = "{tmp_path / "data"}"\ntimezone = "{HOST_ZONE}"\n'
        f'[mqtt]\nurl = "{broker.url}"\n[privacy]\nsalt_file = "{salt}"\n'
        '[buttons]\ndriver = "keyboard"\n'
    )
    res, by = doctor(cfg)
    assert res.returncode == 0, res.stdout
    assert by["certificate"].startswith("skip") and "tls" not in by
    assert_line(by, "mqtt", "ok", f"CONNECT accepted by 127.0.0.1:{broker.port}")


@pytest.mark.parametrize("state, status", [("active", "ok"), ("failed", "fail")])
def test_the_service_state_comes_from_systemd(tmp_path, monkeypatch, state, status):
    """A stand-in `systemctl` on PATH: doctor never needs the real one to be tested."""
    from provisioning.doctor import check_service
    from terminal.config import parse_config

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(
        f'#!/bin/sh\n[ "$1 $2" = "is-active careterm-pad.service" ] || exit 9\n'
        f"echo {state}\n[ {state} = active ]\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    cfg = parse_config({"device": {"id": "pad-w03", "role": "rating_pad", "site": "main"}})
    units = tmp_path / "units"
    units.mkdir()
    assert check_service(cfg, units).status == "skip"
    (units / "careterm-pad.service").write_text("[Service]\n")
    check = check_service(cfg, units)
    assert check.status == status and state in check.detail
    if status == "fail":
        assert "journalctl -u careterm-pad.service" in check.fix


def test_as_root_the_data_dir_is_judged_for_the_service_user(tmp_path):
    """Root can write anywhere; what matters is whether the service's user can."""
    import pwd

    from provisioning.doctor import check_data_dir
    from terminal.config import parse_config

    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    try:
        user = pwd.getpwnam("mosquitto")  # any unprivileged system user stands in for careterm
    except KeyError:
        pytest.skip("no unprivileged system user to stand in")
    d = tmp_path / "state"
    d.mkdir(mode=0o750)
    cfg = parse_config(
        {"device": {"id": "pad-w03", "role": "rating_pad", "site": "main", "data_dir": str(d)}}
    )
    check = check_data_dir(cfg, service_user="mosquitto")
    assert check.status == "fail" and "owned by root" in check.detail
    assert check.fix == f"sudo chown -R mosquitto:mosquitto {d}"
    os.chown(d, user.pw_uid, user.pw_gid)
    assert check_data_dir(cfg, service_user="mosquitto").status == "ok"
    assert (
        check_data_dir(
            parse_config(
                {
                    "device": {
                        "id": "pad-w03",
                        "role": "rating_pad",
                        "site": "main",
                        "data_dir": str(tmp_path / "new" / "state"),
                    }
                }
            )
        ).status
        == "ok"
    )  # created at start


def test_a_bundle_from_another_ca_is_named_as_such_not_the_broker(site, site_broker, tmp_path):
    """The issue's case: every file of the bundle is consistent, made with another CA."""
    other = SiteCA.init(tmp_path / "other-ca")
    issued = other.issue_device("pad-w03", SITE)
    ident = tmp_path / "other-bundle"
    ident.mkdir()
    (ident / "device.crt").write_bytes(issued.cert)
    (ident / "device.key").write_bytes(issued.key)
    (ident / "ca.crt").write_bytes(other.cert_pem)
    (ident / "site.salt").write_bytes(other.salt())
    os.chmod(ident / "device.key", 0o600)
    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=ident,
        data_dir=tmp_path / "d",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(cfg)
    assert res.returncode == 1
    assert_line(by, "certificate", "ok", "pad-w03")  # the bundle itself is whole
    assert_line(
        by,
        "tls",
        "FAIL",
        "this device's CA is 'CN=careterm site CA,O=careterm' (key",
        "made with another CA than the broker's certificate",
        "careterm provision device --ca <that CA folder> --id pad-w03",
    )
    assert "provision broker" not in by["tls"]


def test_a_missing_ca_file_is_named_by_its_key_and_path(site, site_broker, tmp_path):
    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        ca=tmp_path / "gone" / "ca.crt",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(cfg)
    assert res.returncode == 1
    missing = f"mqtt.ca_file {tmp_path / 'gone' / 'ca.crt'}: not found"
    assert_line(by, "certificate", "FAIL", missing, "provision install --bundle")
    assert_line(by, "tls", "FAIL", missing)
    assert "None" not in res.stdout


@pytest.mark.parametrize("synced, fix", [("1", "clock is ahead"), ("0", "set-ntp true")])
def test_a_certificate_not_yet_valid_fails_with_the_clock_to_blame(
    site, site_broker, tmp_path, monkeypatch, synced, fix
):
    import datetime as dt

    from provisioning import certs

    real = certs._now()
    monkeypatch.setattr(certs, "_now", lambda: real + dt.timedelta(days=3))
    early = SiteCA(site.ca).issue_device("pad-w03", SITE)
    (tmp_path / "early.crt").write_bytes(early.cert)
    (tmp_path / "early.key").write_bytes(early.key)
    os.chmod(tmp_path / "early.key", 0o600)
    cfg = write_config(
        tmp_path / "pad.toml",
        device_id="pad-w03",
        role="rating_pad",
        port=site.port,
        ident=site.identity("pad-w03"),
        data_dir=tmp_path / "d",
        cert=tmp_path / "early.crt",
        key=tmp_path / "early.key",
        extra='[buttons]\ndriver = "keyboard"\n',
    )
    res, by = doctor(cfg, synced=synced)
    assert res.returncode == 1
    assert_line(by, "certificate", "FAIL", "pad-w03: not valid yet: valid from", fix)
    assert "more days" not in by["certificate"]


def test_the_time_zone_check_reads_the_systems_zone(tmp_path):
    from provisioning.doctor import check_timezone
    from terminal.config import parse_config

    def cfg(zone: str = "Asia/Shanghai"):
        return parse_config(
            {"device": {"id": "pad-w03", "role": "rating_pad", "site": "main", "timezone": zone}}
        )

    zones = Path("/usr/share/zoneinfo")
    if not (zones / "Asia/Shanghai").exists():
        pytest.skip("no system zoneinfo")
    etc = tmp_path / "etc"
    etc.mkdir()
    localtime = etc / "localtime"
    localtime.symlink_to(zones / "Asia/Shanghai")
    assert check_timezone(cfg(), localtime).status == "ok"
    localtime.unlink()
    localtime.symlink_to(zones / "Etc/UTC")  # a fresh Raspberry Pi OS image
    check = check_timezone(cfg(), localtime)
    assert check.status == "fail"
    assert "the system's time zone is Etc/UTC (UTC+00:00)" in check.detail
    assert "[device].timezone is Asia/Shanghai (UTC+08:00)" in check.detail
    assert check.fix.startswith("sudo timedatectl set-timezone Asia/Shanghai")
    localtime.unlink()
    localtime.symlink_to(zones / "Asia/Chongqing")  # another name for the same rules
    check = check_timezone(cfg(), localtime)
    assert check.status == "ok" and "the same rules as Asia/Shanghai" in check.detail
    localtime.unlink()
    localtime.write_bytes((zones / "Asia/Shanghai").read_bytes())  # copied, not linked
    assert check_timezone(cfg(), localtime).status == "ok"
    localtime.unlink()  # no /etc/localtime: glibc uses UTC
    assert check_timezone(cfg(), localtime).status == "fail"
    assert check_timezone(cfg("UTC"), localtime).status == "ok"


def test_doctor_prints_the_time_zone_step_when_the_zone_is_wrong(tmp_path):
    wrong = "Pacific/Kiritimati" if HOST_ZONE != "Pacific/Kiritimati" else "Asia/Shanghai"
    cfg = tmp_path / "pad.toml"
    cfg.write_text(
        f'[device]\nid = "pad-w03"\nrole = "rating_pad"\nsite = "main"\n'
        f'data_dir = "{tmp_path / "d"}"\ntimezone = "{wrong}"\n'
    )
    res, by = doctor(cfg)
    assert res.returncode == 1
    assert_line(by, "timezone", "FAIL", f"timedatectl set-timezone {wrong}")


def test_as_root_devices_are_judged_for_the_service_user(tmp_path, keypad):
    """Root opens every device; the service's user (here `mosquitto` stands in for
    `careterm`) may not. Its groups include the unit's SupplementaryGroups=."""
    import grp
    import pwd

    from provisioning.doctor import ServiceUser, check_devices
    from terminal.config import parse_config

    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    try:
        pwd.getpwnam("mosquitto")
        dialout = grp.getgrnam("dialout").gr_gid
    except KeyError:
        pytest.skip("no unprivileged system user or dialout group to stand in")
    cfg = parse_config(
        {
            "device": {"id": "pad-w03", "role": "rating_pad", "site": "main"},
            "buttons": {"driver": "serial", "device": keypad.path},
        }
    )
    units = tmp_path / "units"
    units.mkdir()

    def buttons(unit_text: str = "") -> object:
        (units / "careterm-pad.service").write_text(unit_text)
        service = ServiceUser.lookup("mosquitto", "rating_pad", units)
        assert service is not None
        (check,) = check_devices(cfg, tmp_path, service)
        return check

    os.chmod(keypad.path, 0o620)  # a pty: root:tty crw--w----, as a port without udev rules
    check = buttons()
    assert check.status == "fail"
    assert "the service user mosquitto cannot open it read-write" in check.detail
    assert "careterm provision install" in check.fix and "udev" in check.fix
    os.chown(keypad.path, 0, dialout)
    os.chmod(keypad.path, 0o660)  # what careterm's udev rule sets
    check = buttons()
    assert check.status == "fail" and "(not in group dialout)" in check.detail
    assert check.fix == (
        "sudo usermod -aG dialout mosquitto && sudo systemctl restart careterm-pad.service"
    )
    check = buttons("[Service]\nUser=careterm\nSupplementaryGroups=video input dialout\n")
    assert check.status == "ok", check  # the unit gives the group
    os.chmod(keypad.path, 0o666)
    assert buttons().status == "ok"
