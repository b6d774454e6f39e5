"""`careterm doctor`: check a device end to end, one line per check, each failure with its fix."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from terminal.config import ConfigError, DeviceConfig, load_config

EXPIRY_WARN_DAYS = 30
NET_TIMEOUT_S = 4.0
MIN_FREE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail" | "skip"
    detail: str
    fix: str = ""

    def line(self) -> str:
        tag = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}[self.status]
        text = f"{tag}  {self.name:<12} {self.detail}"
        if self.fix and self.status in ("warn", "fail"):
            text += f"  -> fix: {self.fix}"
        return text


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


def run_checks(config_file: str, *, sysfs: Path = Path("/sys")) -> Iterator[Check]:
    """Yield checks as they finish, so a slow network check still shows the earlier lines."""
    try:
        cfg = load_config(config_file)
    except ConfigError as e:
        if "Permission denied" in e.problem:
            fix = "run it as root (sudo careterm doctor): the configuration holds secrets"
        elif "not found" in e.problem:
            fix = "install the device bundle (careterm provision install) or pass --config"
        else:
            fix = (
                f"correct {e.key or 'the file'} (see SPEC section 3), then "
                f"`careterm config check {e.path}`"
            )
        yield fail("config", str(e), fix)
        yield check_clock()
        return
    yield ok(
        "config", f"{config_file}: {cfg.device.id} ({cfg.device.role}) at site {cfg.device.site}"
    )
    yield check_data_dir(cfg)
    yield check_salt(cfg)
    yield check_clock()
    yield from check_certificate(cfg)
    reachable = check_tcp(cfg)
    yield reachable
    if reachable.status != "ok":
        if cfg.mqtt.tls:
            yield skip("tls", "broker not reachable")
        yield skip("mqtt", "broker not reachable")
    else:
        handshake = check_tls(cfg) if cfg.mqtt.tls else None
        if handshake is not None:
            yield handshake
        if handshake is not None and handshake.status == "fail":
            yield skip("mqtt", "no TLS session")
        else:
            yield check_mqtt(cfg)
    yield from check_devices(cfg, sysfs)
    yield check_service(cfg)


# -- local state ------------------------------------------------------------------------------


def check_data_dir(cfg: DeviceConfig, service_user: str = "careterm") -> Check:
    d = cfg.data_dir
    fix = (
        f"create it for the service user: sudo install -d -o {service_user} -g "
        f"{service_user} -m 0750 {d} (or set [device].data_dir)"
    )
    if not d.exists():
        parent = next((p for p in d.parents if p.exists()), Path("/"))
        if not parent.is_dir():
            return fail("data_dir", f"{d}: cannot be created, {parent} is a file", fix)
        if os.access(parent, os.W_OK):
            return ok("data_dir", f"{d}: not there yet; the service creates it at start")
        return fail("data_dir", f"{d}: missing, and {parent} is not writable", fix)
    if not d.is_dir():
        return fail("data_dir", f"{d}: not a folder", fix)
    try:
        probe = d / f".doctor-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"careterm doctor\n")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        return fail("data_dir", f"{d}: not writable ({e.strerror})", fix)
    owner = _service_can_write(d, service_user)
    if owner:
        return fail(
            "data_dir",
            f"{d}: {owner}; the service user {service_user} cannot write there",
            f"sudo chown -R {service_user}:{service_user} {d}",
        )
    st = os.statvfs(d)
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        return warn(
            "data_dir",
            f"{d}: only {free // (1024 * 1024)} MB free",
            "free disk space: the outbox grows while the broker is away",
        )
    return ok("data_dir", f"{d}: writable, {free // (1024 * 1024)} MB free")


def _service_can_write(d: Path, user: str) -> str:
    """As root every folder looks writable: ask for the service user instead ("" = fine)."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd
    import stat

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return ""  # not installed as a service here
    st = d.stat()
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {pw.pw_gid}
    if st.st_uid == pw.pw_uid and st.st_mode & stat.S_IWUSR:
        return ""
    if st.st_gid in groups and st.st_mode & stat.S_IWGRP:
        return ""
    if st.st_mode & stat.S_IWOTH:
        return ""
    try:
        who = f"owned by {pwd.getpwuid(st.st_uid).pw_name}"
    except KeyError:
        who = f"owned by uid {st.st_uid}"
    return f"{who}, mode {stat.S_IMODE(st.st_mode):04o}"


def check_salt(cfg: DeviceConfig) -> Check:
    from terminal.privacy import SaltError, load_salt

    try:
        salt = load_salt(cfg.privacy.salt_file)
    except SaltError as e:
        return fail(
            "salt",
            str(e),
            "install the site's site.salt from the device bundle "
            "(careterm provision install --bundle ...)",
        )
    return ok("salt", f"{cfg.privacy.salt_file}: {len(salt)} bytes")


def check_clock() -> Check:
    from terminal.clock import clock_synced

    if clock_synced():
        return ok("clock", "synchronised (NTP)")
    return fail(
        "clock",
        "not synchronised: event times may be wrong (a Pi has no real-time clock)",
        "enable NTP (sudo timedatectl set-ntp true) and let the device reach the "
        "hospital's NTP server; `timedatectl` shows the state",
    )


# -- certificate --------------------------------------------------------------------------------


def check_certificate(cfg: DeviceConfig) -> Iterator[Check]:
    m = cfg.mqtt
    if not m.tls:
        yield skip("certificate", f"{m.url} is not mqtts://")
        return
    if not m.cert_file:
        yield fail(
            "certificate",
            "mqtt.cert_file is empty: the site broker admits only clients with a certificate",
            "provision the device (careterm provision device) and install its bundle",
        )
        return
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    from provisioning.certs import common_name
    from terminal.certinfo import days_left

    try:
        cert = x509.load_pem_x509_certificate(Path(m.cert_file).read_bytes())
    except OSError as e:
        yield fail(
            "certificate",
            f"{m.cert_file}: {e.strerror} (mqtt.cert_file)",
            "install the device bundle again (careterm provision install --bundle ...)",
        )
        return
    except ValueError:
        yield fail(
            "certificate",
            f"{m.cert_file}: not a PEM certificate (mqtt.cert_file)",
            "install the device bundle again",
        )
        return
    cn = common_name(cert)
    if cn != cfg.device.id:
        yield fail(
            "certificate",
            f"{m.cert_file} is for {cn!r}, but device.id is "
            f"{cfg.device.id!r}: the broker would refuse every topic",
            "make a bundle for this id (careterm provision device --id "
            f"{cfg.device.id} ...) and install it",
        )
        return
    if m.ca_file:
        try:
            cert.verify_directly_issued_by(
                x509.load_pem_x509_certificate(Path(m.ca_file).read_bytes())
            )
        except (OSError, ValueError, TypeError, InvalidSignature):
            yield fail(
                "certificate",
                f"{m.cert_file} was not issued by mqtt.ca_file {m.ca_file}",
                "install the bundle made by this site's CA",
            )
            return
    days = days_left(cert)
    until = cert.not_valid_after_utc.date().isoformat()
    renew = f"make a new bundle (careterm provision device --id {cfg.device.id} ...) and install it"
    if days < 0:
        yield fail("certificate", f"{cn}: expired on {until}", renew)
    elif days < EXPIRY_WARN_DAYS:
        yield warn("certificate", f"{cn}: expires in {days} days ({until})", renew)
    else:
        yield ok("certificate", f"{cn}: valid for {days} more days (until {until})")


# -- network ------------------------------------------------------------------------------------


def check_tcp(cfg: DeviceConfig) -> Check:
    m = cfg.mqtt
    try:
        with socket.create_connection((m.host, m.port), timeout=NET_TIMEOUT_S):
            pass
    except socket.gaierror as e:
        return fail(
            "broker",
            f"{m.host}: name not resolved ({e.strerror})",
            "check mqtt.url and the device's DNS (or use the broker's address)",
        )
    except OSError as e:
        why = e.strerror or str(e) or "timed out"
        return fail(
            "broker",
            f"cannot reach {m.host}:{m.port}: {why}",
            "check the network cable/Wi-Fi, that the broker runs and that the "
            f"firewall lets {m.port}/tcp through (mqtt.url)",
        )
    return ok("broker", f"{m.host}:{m.port} reachable")


def _tls_context(cfg: DeviceConfig) -> ssl.SSLContext:
    m = cfg.mqtt
    ctx = ssl.create_default_context(cafile=m.ca_file or None)
    if m.cert_file:
        ctx.load_cert_chain(m.cert_file, m.key_file or None)
    return ctx


def check_tls(cfg: DeviceConfig) -> Check:
    m = cfg.mqtt
    try:
        ctx = _tls_context(cfg)
    except FileNotFoundError as e:
        return fail(
            "tls",
            f"{e.filename}: not found (mqtt.ca_file / cert_file / key_file)",
            "install the device bundle again",
        )
    except (OSError, ssl.SSLError, ValueError) as e:
        return fail(
            "tls",
            f"cannot load the device's CA, certificate or key: {e}",
            "check mqtt.ca_file, cert_file and key_file (the key must match the "
            "certificate); install the bundle again",
        )
    try:
        with (
            socket.create_connection((m.host, m.port), timeout=NET_TIMEOUT_S) as raw,
            ctx.wrap_socket(raw, server_hostname=m.host) as tls,
        ):
            version = tls.version()
    except ssl.SSLCertVerificationError as e:
        return fail(
            "tls",
            f"broker certificate rejected: {e.verify_message}",
            f"the broker's certificate must come from this site's CA and name {m.host}: "
            f"make it with `careterm provision broker --host {m.host} ...`",
        )
    except (ssl.SSLError, OSError) as e:
        return fail(
            "tls",
            f"TLS handshake with {m.host}:{m.port} failed: {e}",
            "is this port the broker's TLS listener? (mqtt.url)",
        )
    return ok("tls", f"{version} with {m.host}; broker certificate trusted")


def check_mqtt(cfg: DeviceConfig) -> Check:
    """A real MQTT CONNECT with the device's identity (its own client id is left alone,
    so the running service keeps its session)."""
    import paho.mqtt.client as mqtt

    m = cfg.mqtt
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"{cfg.device.id}-doctor",
        protocol=mqtt.MQTTv5,
    )
    client.connect_timeout = NET_TIMEOUT_S
    result: dict[str, object] = {}

    def on_connect(c, u, flags, rc, props) -> None:  # type: ignore[no-untyped-def]
        result["rc"] = rc

    client.on_connect = on_connect
    if m.username:
        password = None
        if m.password_file:
            try:
                password = Path(m.password_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                return fail(
                    "mqtt",
                    f"{m.password_file}: {e.strerror} (mqtt.password_file)",
                    "restore the password file or clear mqtt.username",
                )
        client.username_pw_set(m.username, password)
    if m.tls:
        client.tls_set_context(_tls_context(cfg))
    why = ""
    try:
        client.connect(m.host, m.port, keepalive=10, clean_start=True)
        end = time.monotonic() + NET_TIMEOUT_S
        while "rc" not in result and time.monotonic() < end:
            rc = client.loop(timeout=0.2)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                why = f"connection closed by the broker: {mqtt.error_string(rc)}"
                break
    except (OSError, ssl.SSLError) as e:
        why = str(e)
    finally:
        try:
            client.disconnect()
        except Exception:
            pass
    rc = result.get("rc")
    cert_fix = (
        "the broker refused this device's certificate: install a bundle from this "
        "site's CA (careterm provision device / install)"
    )
    if rc is None:
        return fail(
            "mqtt",
            f"no CONNACK from {m.host}:{m.port}" + (f" ({why})" if why else ""),
            cert_fix if m.tls else "check mqtt.url points at an MQTT broker",
        )
    if getattr(rc, "is_failure", False):
        return fail(
            "mqtt",
            f"broker refused the connection: {rc}",
            cert_fix if m.tls else "check mqtt.username and password_file",
        )
    who = ""
    if m.tls and m.cert_file:
        from provisioning.certs import common_name, load_cert

        try:
            who = f" as {common_name(load_cert(m.cert_file))}"  # the name the ACL sees (%u)
        except (OSError, ValueError):
            pass
    return ok("mqtt", f"CONNECT accepted by {m.host}:{m.port}{who}")


# -- hardware -----------------------------------------------------------------------------------


def check_devices(cfg: DeviceConfig, sysfs: Path) -> Iterator[Check]:
    if cfg.device.role == "rating_pad":
        b = cfg.buttons
        if b.driver == "serial":
            yield check_serial("buttons", b.device, b.baudrate, "[buttons].device")
        elif b.driver == "evdev":
            yield check_input("buttons", b.device, "[buttons].device")
        else:
            yield ok("buttons", f"driver {b.driver!r}: no device to check")
    r = cfg.card_reader
    if r.driver in ("serial", "idcard"):
        from drivers.card_reader.sam_protocol import find_request

        probe = find_request() if r.driver == "idcard" else None
        yield check_serial("card_reader", r.device, r.baudrate, "[card_reader].device", probe)
    elif r.driver == "evdev":
        yield check_input("card_reader", r.device, "[card_reader].device")
    elif cfg.device.role == "kiosk" or r.driver != "none":
        yield ok("card_reader", f"driver {r.driver!r}: no device to check")
    if cfg.device.role == "kiosk":
        yield check_printer(cfg, sysfs)


def _hw_fix(key: str) -> str:
    return (
        f"plug the device in, or set {key} to the name `careterm hw list` shows "
        "(prefer /dev/serial/by-id/...)"
    )


def check_serial(
    name: str, path: str, baudrate: int, key: str, probe: bytes | None = None
) -> Check:
    import serial

    if not path:
        return fail(name, f"{key} is empty", _hw_fix(key))
    if not os.path.exists(path):
        return fail(name, f"{path}: not present", _hw_fix(key))
    try:
        port = serial.Serial(
            path, baudrate=baudrate, timeout=0.5, write_timeout=0.5, exclusive=True
        )
    except serial.SerialException as e:
        err = getattr(e, "errno", None)
        if err in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in str(e).lower():
            return ok(name, f"{path}: present, in use (by the running careterm service?)")
        if err == errno.EACCES or "ermission" in str(e):
            return fail(
                name,
                f"{path}: permission denied",
                "run doctor as root or as a member of the dialout group; "
                "`careterm provision install` sets up the udev rules",
            )
        return fail(name, f"{path}: cannot open ({e})", _hw_fix(key))
    with port:
        if probe is None:
            return ok(name, f"{path}: present and opens at {baudrate} baud")
        try:
            port.reset_input_buffer()
            port.write(probe)
            reply = port.read(32)
        except (serial.SerialException, OSError) as e:
            return fail(name, f"{path}: write/read failed ({e})", _hw_fix(key))
    from drivers.card_reader.sam_protocol import PREAMBLE

    if reply.startswith(PREAMBLE):
        return ok(name, f"{path}: ID card reader answers at {baudrate} baud")
    return fail(
        name,
        f"{path}: opens, but no ID card reader answer at {baudrate} baud",
        f"check the cable and {key.replace('device', 'baudrate')} "
        "(SAM readers use 115200), and that this is the reader's port",
    )


def check_input(name: str, path: str, key: str) -> Check:
    if not path:
        return fail(name, f"{key} is empty", _hw_fix(key).replace("serial", "input"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return fail(
            name,
            f"{path}: not present",
            f"plug it in, or set {key} to a /dev/input/by-id/... name (`careterm hw list`)",
        )
    except PermissionError:
        return fail(
            name,
            f"{path}: permission denied",
            "run doctor as root or as a member of the input group",
        )
    except OSError as e:
        return fail(name, f"{path}: cannot open ({e.strerror})", _hw_fix(key))
    os.close(fd)
    return ok(name, f"{path}: present and readable")


def check_printer(cfg: DeviceConfig, sysfs: Path) -> Check:
    """Present first (USB ids in sysfs, the port, the address), then asked for its status."""
    p = cfg.printer
    if p.driver in ("none", "sim"):
        return ok("printer", f"driver {p.driver!r}: no printer to check")
    if p.driver == "file":
        parent = Path(p.device).parent if p.device else None
        if parent is None or not os.access(parent, os.W_OK):
            return fail(
                "printer",
                f"{p.device or '(empty)'}: cannot write there",
                "set [printer].device to a writable file path",
            )
        return ok("printer", f"{p.device}: writable")
    if p.driver == "serial":
        present = check_serial("printer", p.device, p.baudrate, "[printer].device")
    elif p.driver == "network":
        present = check_network_printer(p.device)
    else:
        present = check_usb_printer(p.usb_vendor, p.usb_product, sysfs)
    if present.status != "ok" or "in use" in present.detail:
        return present
    return ask_printer_status(cfg, present)


def check_usb_printer(vendor: int, product: int, sysfs: Path) -> Check:
    want = (f"{vendor:04x}", f"{product:04x}")
    for dev in sorted((sysfs / "bus/usb/devices").glob("*")):
        try:
            found = (
                (dev / "idVendor").read_text().strip(),
                (dev / "idProduct").read_text().strip(),
            )
        except OSError:
            continue
        if found == want:
            return ok("printer", f"USB {want[0]}:{want[1]} present ({dev.name})")
    return fail(
        "printer",
        f"USB printer {want[0]}:{want[1]} not found",
        "plug the printer in and switch it on, or set [printer].usb_vendor / "
        "usb_product to what `careterm hw list` shows",
    )


def check_network_printer(device: str) -> Check:
    host, _, port_s = device.rpartition(":")
    if not host or not port_s.isdigit():
        return fail(
            "printer",
            f"[printer].device {device!r} is not host:port",
            "set [printer].device to e.g. 10.0.0.50:9100",
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port_s)), timeout=NET_TIMEOUT_S):
            pass
    except OSError as e:
        return fail(
            "printer",
            f"cannot reach {device}: {e.strerror or e}",
            "check the printer is on and its address ([printer].device)",
        )
    return ok("printer", f"{device}: reachable")


def ask_printer_status(cfg: DeviceConfig, present: Check) -> Check:
    """DLE EOT 1, 2 and 4 (online, cover, paper), decoded by the printer driver's parser."""
    from drivers.printer import dle_eot

    p = cfg.printer
    answers: list[int | None] = []
    try:
        if p.driver == "network":
            host, _, port = p.device.rpartition(":")
            with socket.create_connection(
                (host.strip("[]"), int(port)), timeout=NET_TIMEOUT_S
            ) as s:
                s.settimeout(1.0)
                for n in (dle_eot.PRINTER, dle_eot.OFFLINE_CAUSE, dle_eot.PAPER):
                    s.sendall(dle_eot.request(n))
                    try:
                        got = s.recv(1)
                    except TimeoutError:
                        got = b""
                    answers.append(got[0] if got else None)
        elif p.driver == "serial":
            import serial

            with serial.Serial(
                p.device, baudrate=p.baudrate, timeout=1.0, write_timeout=1.0
            ) as port:
                port.reset_input_buffer()
                for n in (dle_eot.PRINTER, dle_eot.OFFLINE_CAUSE, dle_eot.PAPER):
                    port.write(dle_eot.request(n))
                    got = port.read(1)
                    answers.append(got[0] if got else None)
        else:
            return ok(
                "printer",
                f"{present.detail} (doctor reads no status over USB: "
                "`careterm hw test printer` does)",
            )
    except (OSError, ValueError) as e:
        return fail(
            "printer",
            f"{present.detail}, but asking its status failed ({e})",
            "check the printer is on and its cable",
        )
    status = dle_eot.parse(*answers)
    why = dle_eot.problem(status)
    if why:
        return fail(
            "printer",
            f"{present.detail}; printer reports {why}",
            "load paper, close the cover, or switch the printer online",
        )
    if status.online is None:
        return ok("printer", f"{present.detail}; no status answer (some printers do not answer)")
    if status.paper_near_end:
        return warn(
            "printer", f"{present.detail}; online, paper near end", "load a new paper roll soon"
        )
    return ok("printer", f"{present.detail}; online, paper ok")


def check_service(cfg: DeviceConfig, unit_dir: Path = Path("/etc/systemd/system")) -> Check:
    from provisioning.install import UNITS

    unit = UNITS[cfg.device.role]
    if not (unit_dir / unit).exists():
        return skip("service", f"{unit} not installed (careterm provision install sets it up)")
    import shutil
    import subprocess

    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return skip("service", "no systemctl here")
    try:
        res = subprocess.run(
            [systemctl, "is-active", unit], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return skip("service", f"cannot ask systemd ({e})")
    state = res.stdout.strip() or "unknown"
    if state == "active":
        return ok("service", f"{unit} active")
    return fail(
        "service",
        f"{unit} is {state}",
        f"see why: journalctl -u {unit} -n 50; then sudo systemctl restart {unit}",
    )
