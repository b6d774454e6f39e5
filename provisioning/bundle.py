"""Device bundles: the device.toml a new device starts with, and the tar.gz that carries it with its keys."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import tomli_w
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning.certs import common_name, write_secret
from terminal.config import ConfigError, DeviceConfig, parse_config

ETC = "/etc/careterm"
MEMBERS = ("device.toml", "device.crt", "device.key", "ca.crt", "site.salt")
SECRET_MEMBERS = ("device.key", "site.salt")
MAX_MEMBER_BYTES = 1 << 20

INSTALLED = {
    "config": f"{ETC}/device.toml",
    "ca": f"{ETC}/ca.crt",
    "cert": f"{ETC}/device.crt",
    "key": f"{ETC}/device.key",
    "salt": f"{ETC}/site.salt",
}


class BundleError(Exception):
    """A bundle that cannot be made or installed; the message says which part and why."""


def device_settings(
    *,
    device_id: str,
    role: str,
    site: str,
    broker: str,
    window: str = "",
    window_name: str = "",
    topic_root: str = "careterm",
) -> dict[str, Any]:
    """The device.toml of a freshly provisioned device, as a dict (sections for its role only)."""
    data: dict[str, Any] = {
        "device": {
            "id": device_id,
            "role": role,
            "site": site,
            "data_dir": "/var/lib/careterm",
            "retain_days": 7,
        },
        "mqtt": {
            "url": broker,
            "ca_file": INSTALLED["ca"],
            "cert_file": INSTALLED["cert"],
            "key_file": INSTALLED["key"],
            "keepalive_s": 30,
            "topic_root": topic_root,
        },
        "privacy": {"salt_file": INSTALLED["salt"]},
    }
    if role == "rating_pad":
        data["window"] = {"id": window, "name": window_name}
        data["buttons"] = {"driver": "serial", "device": "/dev/ttyUSB0", "baudrate": 9600}
        data["card_reader"] = {"driver": "none"}
    else:
        data["card_reader"] = {"driver": "idcard", "device": "/dev/ttyUSB0", "baudrate": 115200}
        data["printer"] = {
            "driver": "usb",
            "usb_vendor": 0x0416,
            "usb_product": 0x5011,
            "encoding": "gb18030",
            "columns": 48,
            "cut": True,
        }
        data["kiosk"] = {"idle_timeout_s": 60, "language": "zh", "fullscreen": True}
    return data


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """`section.key=value` with a TOML value (`9600`, `true`, `["a","b"]`), else a plain string."""
    name, sep, raw = assignment.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key or "." in key:
        raise BundleError(
            f"--set {assignment!r}: write it as section.key=value, "
            "e.g. buttons.device=/dev/serial/by-id/usb-..."
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    data.setdefault(section, {})[key] = value


FIXED_KEYS = {
    ("device", "id"): "--id",
    ("device", "role"): "--role",
    ("device", "site"): "--site",
    ("mqtt", "url"): "--broker",
    ("mqtt", "topic_root"): "--topic-root",
    ("mqtt", "ca_file"): "",
    ("mqtt", "cert_file"): "",
    ("mqtt", "key_file"): "",
    ("privacy", "salt_file"): "",
    ("window", "id"): "--window",
}


def check_fixed(before: dict[str, Any], after: dict[str, Any]) -> None:
    """--set may not change what the certificate, the broker ACL or install depend on."""
    for (section, key), option in FIXED_KEYS.items():
        if before.get(section, {}).get(key) != after.get(section, {}).get(key):
            how = f"use {option}" if option else "install puts it in /etc/careterm"
            raise BundleError(f"--set {section}.{key}: not settable here ({how})")


def validate(data: dict[str, Any]) -> DeviceConfig:
    """The same check the device makes at start (raises ConfigError naming the key), and
    that `provision install` could give device.data_dir to the service."""
    cfg = parse_config(data, "device.toml")
    problem = data_dir_problem(cfg.device.data_dir)
    if problem:
        raise ConfigError("device.toml", "device.data_dir", problem)
    return cfg


SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/run", "/sbin", "/sys", "/usr")
"""Install makes device.data_dir the service's (chown careterm, 0750, writable under the
unit): never one of these or below them."""
HIDDEN_DIRS = ("/home", "/root", "/tmp", "/var/tmp")
"""What the unit hides from the service (ProtectHome=, PrivateTmp=)."""
SHARED_DIRS = (
    "/opt",
    "/srv",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/spool",
    "/var/www",
)
"""Folders other software shares: a data_dir must be a folder of its own below them."""
DATA_DIR_FIX = (
    "give careterm a folder of its own, e.g. /var/lib/careterm (the default) or /srv/careterm"
)


def data_dir_problem(data_dir: str) -> str | None:
    """Why `data_dir` cannot be given to the service user, with the fix; None when it can."""
    path = PurePosixPath(data_dir)
    if ".." in path.parts or "." in data_dir.split("/"):
        return f"{data_dir!r}: write it without '.' or '..' segments; {DATA_DIR_FIX}"
    text = str(path)
    if text == "/" or text in SHARED_DIRS:
        return f"{text} is shared with the rest of the system; {DATA_DIR_FIX}"
    for top in SYSTEM_DIRS:
        if text == top or text.startswith(top + "/"):
            return (
                f"{text} is below the system folder {top}, which install would hand to the "
                f"careterm user; {DATA_DIR_FIX}"
            )
    for top in HIDDEN_DIRS:
        if text == top or text.startswith(top + "/"):
            return f"{text} is below {top}, which the service cannot see; {DATA_DIR_FIX}"
    return None


HINTS = {
    "buttons": "# Prefer the stable /dev/serial/by-id/... name (`careterm hw list` shows it).",
    "card_reader": "# Prefer the stable /dev/serial/by-id/... name (`careterm hw list` shows it).",
    "printer": "# usb_vendor/usb_product as `careterm hw list` shows them (vendor:product).",
}


HEX_KEYS = {"printer": ("usb_vendor", "usb_product")}
"""Integers written in hex, as `careterm hw list` and `lsusb` show them (`0416:5011`) and as
SPEC 3 writes them: a decimal 1046 beside a `hw list` line saying 0416 invites a wrong edit."""


def render_toml(data: dict[str, Any], header: str = "") -> str:
    """device.toml text: `header` as comments, then each section (tomli-w writes the values),
    with a hint under the sections whose device name a technician usually edits."""
    parts = ["\n".join(f"# {line}" if line else "#" for line in header.splitlines())]
    for section, values in data.items():
        text = tomli_w.dumps({section: values})
        for key in HEX_KEYS.get(section, ()):
            value = values.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                text = text.replace(f"\n{key} = {value}\n", f"\n{key} = 0x{value:04x}\n", 1)
        if section in HINTS and values.get("driver") not in (None, "none"):
            head, _, rest = text.partition("\n")
            text = f"{head}\n{HINTS[section]}\n{rest}"
        parts.append(text.rstrip("\n"))
    return "\n\n".join(p for p in parts if p) + "\n"


# -- the bundle -----------------------------------------------------------------------------


def write_bundle(out: Path, files: dict[str, bytes]) -> None:
    """A tar.gz of exactly MEMBERS; the file itself is 0600 because it carries a private key."""
    missing = [m for m in MEMBERS if m not in files]
    if missing:
        raise BundleError(f"bundle would lack {', '.join(missing)}")
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in MEMBERS:
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600 if name in SECRET_MEMBERS else 0o644
            info.mtime = now
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_secret(out, buf.getvalue())  # 0600 from the first byte; no partial file left


@dataclass(frozen=True)
class Bundle:
    files: dict[str, bytes]
    config: DeviceConfig

    @property
    def role(self) -> str:
        return self.config.device.role


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Open and check a bundle: only the expected regular files, a valid device.toml, a
    certificate for this device signed by the bundled CA and matching the bundled key."""
    p = Path(path)
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(p, mode="r:gz") as tar:
            for info in tar.getmembers():
                name = info.name.removeprefix("./")
                if name not in MEMBERS:
                    raise BundleError(
                        f"{p}: unexpected member {info.name!r} (not a careterm bundle?)"
                    )
                if not info.isfile():
                    raise BundleError(f"{p}: {name} is not a regular file")
                if info.size > MAX_MEMBER_BYTES:
                    raise BundleError(f"{p}: {name} is too large ({info.size} bytes)")
                f = tar.extractfile(info)
                assert f is not None
                files[name] = f.read()
    except FileNotFoundError:
        raise BundleError(f"{p}: no such file") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(f"{p}: not a readable tar.gz bundle ({e})") from None
    missing = [m for m in MEMBERS if m not in files]
    if missing:
        raise BundleError(
            f"{p}: bundle lacks {', '.join(missing)}; make it again with "
            "`careterm provision device`"
        )
    try:
        data = tomllib.loads(files["device.toml"].decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BundleError(f"{p}: device.toml is not valid TOML ({e})") from None
    cfg = parse_config(data, f"{p}:device.toml")
    problem = data_dir_problem(cfg.device.data_dir)
    if problem:
        raise BundleError(f"{p}:device.toml: device.data_dir: {problem}")
    _check_identity(p, files, cfg)
    return Bundle(files, cfg)


def _check_identity(p: Path, files: dict[str, bytes], cfg: DeviceConfig) -> None:

    try:
        cert = x509.load_pem_x509_certificate(files["device.crt"])
        ca = x509.load_pem_x509_certificate(files["ca.crt"])
        key = serialization.load_pem_private_key(files["device.key"], password=None)
    except ValueError as e:
        raise BundleError(f"{p}: unreadable certificate or key ({e})") from None
    if common_name(cert) != cfg.device.id:
        raise BundleError(
            f"{p}: device.crt is for {common_name(cert)!r} but device.toml says "
            f"device.id = {cfg.device.id!r}"
        )
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise BundleError(f"{p}: device.crt was not signed by the bundled ca.crt") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or (
        key.public_key().public_numbers() != cert.public_key().public_numbers()  # type: ignore[union-attr]
    ):
        raise BundleError(f"{p}: device.key does not belong to device.crt")


def summary(cfg: DeviceConfig) -> str:
    return json.dumps(
        {
            "id": cfg.device.id,
            "role": cfg.device.role,
            "site": cfg.device.site,
            "broker": cfg.mqtt.url,
        },
        ensure_ascii=False,
    )
