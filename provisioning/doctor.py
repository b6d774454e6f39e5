"""`careterm doctor`: check a device end to end, one line per check, each failure with its fix."""

from __future__ import annotations

import datetime as dt
import errno
import grp
import os
import pwd
import shutil
import socket
import ssl
import stat
import subprocess
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import serial
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from drivers.card_reader.sam_protocol import PREAMBLE, find_request
from drivers.printer import dle_eot
from drivers.printer.transports import find_usblp
from provisioning.certs import common_name, load_cert
from provisioning.install import UNITS
from terminal.certinfo import days_left
from terminal.clock import clock_synced
from terminal.config import ConfigError, DeviceConfig, file_problems, load_config
from terminal.privacy import SaltError, load_salt

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


SERVICE_USER = "careterm"
UNIT_DIR = Path("/etc/systemd/system")


def run_checks(
    config_file: str,
    *,
    sysfs: Path = Path("/sys"),
    service_user: str = SERVICE_USER,
    unit_dir: Path = UNIT_DIR,
) -> Iterator[Check]:
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
    relative = [(k, why) for k, why in file_problems(cfg) if "a relative path" in why]
    if relative:
        key, why = relative[0]
        more = f" (and {len(relative) - 1} more)" if len(relative) > 1 else ""
        yield fail("paths", f"{key}: {why}{more}", f"write every path in {config_file} in full")
    service = ServiceUser.lookup(service_user, cfg.device.role, unit_dir)
    yield check_data_dir(cfg, service_user)
    yield check_salt(cfg)
    yield check_secrets(cfg)
    clock = check_clock()
    yield clock
    yield check_timezone(cfg)
    yield from check_certificate(cfg, clock_ok=clock.status == "ok")
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
    yield from check_devices(cfg, sysfs, service)
    yield check_service(cfg, unit_dir)


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


@dataclass(frozen=True)
class ServiceUser:
    """Who the service runs as: the user, its groups and the unit's SupplementaryGroups=.

    Root opens every device; doctor run as root therefore judges access for this user from
    the node's owner, group and mode (what udev sets; ACLs are not consulted)."""

    name: str
    uid: int
    gids: frozenset[int]
    unit: str

    @classmethod
    def lookup(cls, name: str, role: str, unit_dir: Path = UNIT_DIR) -> ServiceUser | None:
        """None unless doctor runs as root and the user exists (installed as a service)."""
        if os.geteuid() != 0:
            return None
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            return None
        gids = set(os.getgrouplist(name, pw.pw_gid))
        unit = UNITS[role]
        try:
            text = (unit_dir / unit).read_text(encoding="utf-8")
        except OSError:
            text = ""
        for line in text.splitlines():
            key, _, value = line.strip().partition("=")
            if key == "SupplementaryGroups":
                for g in value.split():
                    try:
                        gids.add(grp.getgrnam(g).gr_gid)
                    except KeyError:
                        pass
        return cls(name, pw.pw_uid, frozenset(gids), unit)

    def denied(self, path: str | Path, write: bool) -> tuple[str, str]:
        """("", "") when this user may open `path` for reading (and writing); else what
        stands in the way and the fix."""
        try:
            st = os.stat(path)
        except OSError:
            return "", ""  # reported by the caller's own check
        need = (stat.S_IROTH | stat.S_IWOTH) if write else stat.S_IROTH
        mode = stat.S_IMODE(st.st_mode)
        if self.uid == 0:
            return "", ""
        if st.st_uid == self.uid:
            bits = (mode >> 6) & 7
        elif st.st_gid in self.gids:
            bits = (mode >> 3) & 7
        else:
            bits = mode & 7
        if bits & need == need:
            return "", ""
        owner, group = _user_name(st.st_uid), _group_name(st.st_gid)
        why = (
            f"{stat.filemode(st.st_mode)} {owner}:{group}; the service user {self.name} "
            f"cannot {'open it read-write' if write else 'read it'}"
        )
        restart = f"sudo systemctl restart {self.unit}"
        if (mode >> 3) & need == need and st.st_gid not in self.gids and group != "root":
            fix = f"sudo usermod -aG {group} {self.name} && {restart}"
            return why + f" (not in group {group})", fix
        if stat.S_ISDIR(st.st_mode):
            return why, f"sudo chown -R {self.name}:{self.name} {path}"
        return why, (
            'give the device a group with access (udev: GROUP="dialout" or "input", '
            'MODE="0660"): `careterm provision install` installs such rules; then re-plug it'
        )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _service_can_write(d: Path, user: str) -> str:
    """As root every folder looks writable: ask for the service user instead ("" = fine)."""
    if os.geteuid() != 0:
        return ""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return ""  # not installed as a service here
    who = ServiceUser(user, pw.pw_uid, frozenset(os.getgrouplist(user, pw.pw_gid)), "")
    st = d.stat()
    if not who.denied(d, write=True)[0]:
        return ""
    return f"owned by {_user_name(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o}"


def check_secrets(cfg: DeviceConfig) -> Check:
    """The device key, the site salt and the broker password are readable by root and the
    service only (install makes them 0640 root:careterm): a copy made by hand with `cp` or
    unpacked with `tar` as another user is often world-readable, and anyone logged in could
    then take the device's identity or match card tokens."""
    m = cfg.mqtt
    files = [
        ("mqtt.key_file", m.key_file if m.tls else ""),
        ("privacy.salt_file", cfg.privacy.salt_file),
        ("mqtt.password_file", m.password_file if m.username else ""),
    ]
    open_to_all, checked = [], []
    for key, path in files:
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None  # missing or unreadable: the salt, certificate and tls lines say so
        if st is None:
            continue
        checked.append(path)
        if st.st_mode & 0o007:
            open_to_all.append((key, path, stat.filemode(st.st_mode)))
    if open_to_all:
        key, path, mode = open_to_all[0]
        names = " ".join(p for _, p, _ in open_to_all)
        return fail(
            "secrets",
            f"{path} ({key}) is {mode}: other users can read it"
            + (f" (and {len(open_to_all) - 1} more)" if len(open_to_all) > 1 else ""),
            f"sudo chown root:careterm {names} && sudo chmod 0640 {names}",
        )
    if not checked:
        return skip("secrets", "no device key, salt or password file to check")
    return ok("secrets", f"{', '.join(checked)}: closed to other users")


def check_salt(cfg: DeviceConfig) -> Check:
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
    if clock_synced():
        return ok("clock", "synchronised (NTP)")
    return fail(
        "clock",
        "not synchronised: event times may be wrong (a Pi has no real-time clock)",
        "enable NTP (sudo timedatectl set-ntp true) and let the device reach the "
        "hospital's NTP server; `timedatectl` shows the state",
    )


def system_timezone(localtime: Path = Path("/etc/localtime")) -> str | None:
    """The IANA name the system's local time follows (glibc reads /etc/localtime): the name
    its symlink points at, else /etc/timezone (Debian) beside it; "UTC" when it is missing;
    None when the name cannot be told (a copied zone file)."""
    if not localtime.exists() and not localtime.is_symlink():
        return "UTC"  # glibc's default
    if localtime.is_symlink():
        target = os.readlink(localtime)  # one level: the name timedatectl chose
        if "/zoneinfo/" in target:
            return target.split("/zoneinfo/", 1)[1].removeprefix("posix/")
    named = localtime.parent / "timezone"
    try:
        return named.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _zone_bytes(name: str) -> bytes | None:
    for base in zoneinfo.TZPATH:
        try:
            return (Path(base) / name).read_bytes()
        except OSError:
            continue
    return None


def check_timezone(cfg: DeviceConfig, localtime: Path = Path("/etc/localtime")) -> Check:
    """SPEC 9.5: the device's local time zone is [device].timezone (a Pi image often ships
    as UTC or Europe/London: every event time, screen clock and ticket would be off)."""
    want = cfg.device.timezone
    fix = (
        f"sudo timedatectl set-timezone {want}, then restart the service "
        "(or set [device].timezone if the site is really elsewhere)"
    )
    have = system_timezone(localtime)
    if have == want:
        return ok("timezone", f"{want}, as [device].timezone says")
    try:
        current = localtime.read_bytes()
    except OSError:
        current = None
    want_bytes = _zone_bytes(want)
    if current is not None and want_bytes is not None and current == want_bytes:
        return ok("timezone", f"{have or 'local time'}: the same rules as {want}")
    now = dt.datetime.now(dt.UTC)
    offset = now.astimezone().strftime("%z")
    expected = now.astimezone(zoneinfo.ZoneInfo(want)).strftime("%z")
    return fail(
        "timezone",
        f"the system's time zone is {have or 'unknown'} (UTC{offset[:3]}:{offset[3:]}), "
        f"but [device].timezone is {want} (UTC{expected[:3]}:{expected[3:]})",
        fix,
    )


# -- certificate --------------------------------------------------------------------------------


def check_certificate(cfg: DeviceConfig, clock_ok: bool = True) -> Iterator[Check]:
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
            ca = x509.load_pem_x509_certificate(Path(m.ca_file).read_bytes())
        except OSError as e:
            yield fail(
                "certificate",
                f"mqtt.ca_file {m.ca_file}: {_why(e)}",
                "install the device bundle again (careterm provision install --bundle ...): "
                "it holds ca.crt",
            )
            return
        except ValueError:
            yield fail(
                "certificate",
                f"mqtt.ca_file {m.ca_file}: not a PEM certificate",
                "install the device bundle again (careterm provision install --bundle ...)",
            )
            return
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            yield fail(
                "certificate",
                f"{m.cert_file} was not issued by mqtt.ca_file {m.ca_file} "
                f"({_issuer_text(cert)}; the CA file is {_subject_text(ca)})",
                "the device certificate and ca.crt come from different bundles: install "
                "this device's bundle again, as made by the site's CA",
            )
            return
    days = days_left(cert)
    until = cert.not_valid_after_utc.date().isoformat()
    renew = f"make a new bundle (careterm provision device --id {cfg.device.id} ...) and install it"
    start = cert.not_valid_before_utc
    now = dt.datetime.now(dt.UTC)
    if now < start:
        when = start.strftime("%Y-%m-%d %H:%M UTC")
        clock = now.strftime("%Y-%m-%d %H:%M UTC")
        yield fail(
            "certificate",
            f"{cn}: not valid yet: valid from {when}, and this device's clock says {clock}",
            (
                "the clock is behind: enable NTP (sudo timedatectl set-ntp true) and let it "
                "synchronise, then run doctor again"
                if not clock_ok
                else "the bundle was made on a computer whose clock is ahead: correct that "
                f"clock, then {renew}"
            ),
        )
    elif days < 0:
        yield fail("certificate", f"{cn}: expired on {until}", renew)
    elif days < EXPIRY_WARN_DAYS:
        yield warn("certificate", f"{cn}: expires in {days} days ({until})", renew)
    else:
        yield ok("certificate", f"{cn}: valid for {days} more days (until {until})")


def _why(e: OSError) -> str:
    return "not found" if isinstance(e, FileNotFoundError) else (e.strerror or str(e))


def _key_id(cert: x509.Certificate, issuer: bool) -> str:
    """A short key id: every careterm CA is called "careterm site CA", so names do not tell
    two CAs apart, their keys do."""
    try:
        if issuer:
            ext = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
            kid = ext.value.key_identifier
        else:
            kid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return ""
    return f" (key {kid.hex()[:8]})" if kid else ""


def _subject_text(cert: x509.Certificate) -> str:
    return f"'{cert.subject.rfc4514_string()}'{_key_id(cert, issuer=False)}"


def _issuer_text(cert: x509.Certificate) -> str:
    return f"issued by '{cert.issuer.rfc4514_string()}'{_key_id(cert, issuer=True)}"


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


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


BUNDLE_FIX = "install the device bundle again (careterm provision install --bundle ...)"
NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
CERT_NOT_YET_VALID = 9
CERT_HAS_EXPIRED = 10


def check_tls(cfg: DeviceConfig) -> Check:
    m = cfg.mqtt
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(m, key)
        if path and not os.path.exists(path):
            return fail("tls", f"mqtt.{key} {path}: not found", BUNDLE_FIX)
    try:
        ctx = _tls_context(cfg)
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
        detail, fix = _broker_rejected(cfg, e)
        return fail("tls", detail, fix)
    except (ssl.SSLError, OSError) as e:
        return fail(
            "tls",
            f"TLS handshake with {m.host}:{m.port} failed: {e}",
            "is this port the broker's TLS listener? (mqtt.url)",
        )
    return ok("tls", f"{version} with {m.host}; broker certificate trusted")


def broker_certificate(cfg: DeviceConfig) -> x509.Certificate | None:
    """The broker's certificate, fetched without trusting it, to explain why it is refused."""
    m = cfg.mqtt
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((m.host, m.port), timeout=NET_TIMEOUT_S) as raw,
            ctx.wrap_socket(raw, server_hostname=m.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return x509.load_der_x509_certificate(der) if der else None


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [common_name(cert)]
    return [str(n.value) for n in san]


def _broker_rejected(cfg: DeviceConfig, e: ssl.SSLCertVerificationError) -> tuple[str, str]:
    """Whose certificate is wrong, and the fix: the broker's (name, expiry) or the device's
    bundle (from another CA than the broker, or a ca.crt that is not the bundle's)."""
    m = cfg.mqtt
    detail = f"broker certificate rejected: {e.verify_message}"
    broker = broker_certificate(cfg)
    remake = "remake the broker's folder (careterm provision broker ...) and restart Mosquitto"
    if e.verify_code in NAME_MISMATCH:
        names = ", ".join(_names(broker)) if broker else "other names"
        return detail + f" (it names {names})", (
            f"mqtt.url says {m.host}, which the broker's certificate does not name: use one "
            f"of its names in mqtt.url, or remake the broker's folder with "
            f"`careterm provision broker --host {m.host} ...` and restart Mosquitto"
        )
    if e.verify_code == CERT_HAS_EXPIRED:
        return detail, f"the broker's certificate has expired: {remake}"
    if e.verify_code == CERT_NOT_YET_VALID:
        return detail, (
            "this device's clock is behind: enable NTP (sudo timedatectl set-ntp true), "
            "let it synchronise, then run doctor again"
        )
    if not m.ca_file:
        return detail, "set mqtt.ca_file to the site's ca.crt (it is in the device bundle)"
    try:
        ca = load_cert(m.ca_file)
        mine = load_cert(m.cert_file) if m.cert_file else None
    except (OSError, ValueError):
        return detail, BUNDLE_FIX
    issuer = f"; the broker's certificate is {_issuer_text(broker)}" if broker else ""
    bundle_ok = mine is not None and _issued_by(mine, ca)
    if broker is not None and not _issued_by(broker, ca) and bundle_ok:
        return detail + f" (this device's CA is {_subject_text(ca)}{issuer})", (
            "this device's bundle was made with another CA than the broker's certificate: "
            f"make the bundle again with the site CA that made the broker's folder "
            f"(careterm provision device --ca <that CA folder> --id {cfg.device.id} ...) and "
            "install it; or, if mqtt.url points at another site's broker, correct mqtt.url"
        )
    if not bundle_ok:
        return detail + f" (mqtt.ca_file is {_subject_text(ca)}{issuer})", (
            "mqtt.ca_file is not the CA of this device's certificate (files from two "
            f"different bundles): {BUNDLE_FIX}"
        )
    if broker is None:
        return detail + f" (this device's CA is {_subject_text(ca)})", (
            "the broker's certificate and this device's bundle come from different CAs: make "
            "the bundle with the site CA that made the broker's folder (careterm provision "
            f"device --ca <that CA folder> --id {cfg.device.id} ...), or {remake}"
        )
    return detail + issuer, f"the broker's certificate must come from this site's CA: {remake}"


def check_mqtt(cfg: DeviceConfig) -> Check:
    """A real MQTT CONNECT with the device's identity (its own client id is left alone,
    so the running service keeps its session)."""

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
        try:
            who = f" as {common_name(load_cert(m.cert_file))}"  # the name the ACL sees (%u)
        except (OSError, ValueError):
            pass
    return ok("mqtt", f"CONNECT accepted by {m.host}:{m.port}{who}")


# -- hardware -----------------------------------------------------------------------------------


def check_devices(
    cfg: DeviceConfig, sysfs: Path, service: ServiceUser | None = None
) -> Iterator[Check]:
    if cfg.device.role == "rating_pad":
        b = cfg.buttons
        if b.driver == "serial":
            check = check_serial("buttons", b.device, b.baudrate, "[buttons].device")
            yield for_service(check, b.device, True, service)
        elif b.driver == "evdev":
            check = check_input("buttons", b.device, "[buttons].device")
            yield for_service(check, b.device, False, service)
        else:
            yield ok("buttons", f"driver {b.driver!r}: no device to check")
    r = cfg.card_reader
    if r.driver in ("serial", "idcard"):
        probe = find_request() if r.driver == "idcard" else None
        check = check_serial("card_reader", r.device, r.baudrate, "[card_reader].device", probe)
        yield for_service(check, r.device, True, service)
    elif r.driver == "evdev":
        check = check_input("card_reader", r.device, "[card_reader].device")
        yield for_service(check, r.device, False, service)
    elif cfg.device.role == "kiosk" or r.driver != "none":
        yield ok("card_reader", f"driver {r.driver!r}: no device to check")
    if cfg.device.role == "kiosk":
        yield check_printer(cfg, sysfs, service)


def for_service(check: Check, path: str, write: bool, service: ServiceUser | None) -> Check:
    """A device root could open is only fine if the service's user can open it too."""
    if service is None or check.status != "ok":
        return check
    why, fix = service.denied(path, write)
    if not why:
        return check
    return fail(check.name, f"{path}: present, but {why}", fix)


def _hw_fix(key: str) -> str:
    return (
        f"plug the device in, or set {key} to the name `careterm hw list` shows "
        "(prefer /dev/serial/by-id/...)"
    )


def check_serial(
    name: str, path: str, baudrate: int, key: str, probe: bytes | None = None
) -> Check:

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


def check_printer(cfg: DeviceConfig, sysfs: Path, service: ServiceUser | None = None) -> Check:
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
        present = for_service(
            check_serial("printer", p.device, p.baudrate, "[printer].device"),
            p.device,
            True,
            service,
        )
    elif p.driver == "network":
        present = check_network_printer(p.device)
    else:
        present = check_usb_printer(p.usb_vendor, p.usb_product, sysfs)

        node = find_usblp(p.usb_vendor, p.usb_product, sysfs / "class/usbmisc")
        if node:
            present = for_service(present, node, True, service)
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
    unit = UNITS[cfg.device.role]
    if not (unit_dir / unit).exists():
        return skip("service", f"{unit} not installed (careterm provision install sets it up)")
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
