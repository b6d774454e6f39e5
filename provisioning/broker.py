"""The site broker's Mosquitto configuration: one mutual-TLS listener, identity as username, a %u ACL."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from provisioning.certs import CRL, SiteCA, service_identity, write_public, write_secret

RETAINED_SITE_TOPICS = ("roster", "directory", "survey", "staff")
DEVICE_WRITES = ("status", "events/#", "alerts/#", "telemetry", "reply")
DEVICE_READS = ("cmd/#", "ack")


def render_acl(root: str, site: str) -> str:
    base = f"{root}/{site}"
    service = service_identity(site)
    lines = [
        f"# careterm broker ACL for site {site!r} (topic root {root!r}).",
        "# %u is the common name of the client's certificate (use_identity_as_username).",
        "# Never %c: a client chooses its own client id, so %c would let a device speak for another.",
        "# Mosquitto denies whatever no line below allows.",
        "",
        "# Every device: publish only its own topics, read only its own commands and ack,",
        "# and the site's retained topics.",
    ]
    lines += [f"pattern write {base}/%u/{t}" for t in DEVICE_WRITES]
    lines += [f"pattern read {base}/%u/{t}" for t in DEVICE_READS]
    lines += [f"pattern read {base}/{t}" for t in RETAINED_SITE_TOPICS]
    lines += [
        "",
        "# The site service (roster publisher, collector, alert forwarder): reads everything,",
        "# publishes the site's retained topics, acks and commands.",
        f"user {service}",
        "topic read #",
        "topic read $SYS/#",
    ]
    lines += [f"topic write {base}/{t}" for t in RETAINED_SITE_TOPICS]
    lines += [f"topic write {base}/+/ack", f"topic write {base}/+/cmd/#"]
    return "\n".join(lines) + "\n"


def render_conf(dest: Path, *, port: int, site: str, run_as: str = "", crl: bool = False) -> str:
    d = dest
    lines = [
        f"# careterm site broker for site {site!r}, written by `careterm provision broker`.",
        f"# Run it as is: mosquitto -c {d}/mosquitto.conf",
        "# Only clients with a certificate from the site CA get in; there is no other listener,",
        "# and none may be added without authentication (a loopback listener would bypass the ACL).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {d}/acl",
        "",
        f"listener {port}",
        f"cafile {d}/ca.crt",
        f"certfile {d}/server.crt",
        f"keyfile {d}/server.key",
        *([f"crlfile {d}/{CRL}"] if crl else []),
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "",
        "# Persistent sessions keep commands for devices that are away; the site `ack` covers",
        "# what Mosquitto acknowledged from memory before its next save.",
        "persistence true",
        f"persistence_location {d}/data/",
        "autosave_interval 30",
        "max_queued_messages 10000",
        "persistent_client_expiration 14d",
        "",
        "# Nagle's algorithm on the broker's sockets doubles p99 latency for small QoS 1",
        "# messages (BENCHMARKS.md, fleet at 10x): send them at once.",
        "set_tcp_nodelay true",
        "",
        "connection_messages true",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
    ]
    if run_as:
        lines += ["", f"user {run_as}"]
    return "\n".join(lines) + "\n"


def write_broker_dir(
    ca: SiteCA,
    out: Path,
    *,
    site: str,
    hosts: list[str],
    port: int = 8883,
    topic_root: str = "careterm",
    run_as: str = "",
    dest: Path | None = None,
) -> list[Path]:
    """Write DIR/{mosquitto.conf, acl, ca.crt, server.crt, server.key, site-service.crt/.key}.

    The configuration names its files by absolute path: `dest` when the folder will be
    copied to that place on the broker host, else where it is written.
    """
    out.mkdir(parents=True, exist_ok=True)
    server = ca.issue_server(hosts, site)
    service = ca.issue_service(site)
    written = []

    def put(name: str, data: bytes, secret: bool = False) -> None:
        path = out / name
        (write_secret if secret else write_public)(path, data)
        written.append(path)

    put("ca.crt", ca.cert_pem)
    put("server.crt", server.cert)
    put("server.key", server.key, secret=True)
    put("site-service.crt", service.cert)
    put("site-service.key", service.key, secret=True)
    put("acl", render_acl(topic_root, site).encode())
    crl = ca.dir / CRL
    if crl.exists():
        put(CRL, crl.read_bytes())
    conf = render_conf(dest or out.resolve(), port=port, site=site, run_as=run_as, crl=crl.exists())
    put("mosquitto.conf", conf.encode())
    data = out / "data"
    data.mkdir(exist_ok=True)
    _give_to_broker_user(data, out / "server.key")
    return written


def _give_to_broker_user(data_dir: Path, server_key: Path) -> None:
    """Started as root, Mosquitto drops to the `mosquitto` user: let that user write its
    persistence directory and read the server key (still unreadable to everyone else)."""
    if os.geteuid() != 0:
        return
    try:
        pw = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    os.chown(data_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(data_dir, 0o700)
    os.chown(server_key, 0, pw.pw_gid)
    os.chmod(server_key, 0o640)


def install_crl(ca: SiteCA, broker_dir: Path) -> Path:
    """Copy the CA's current CRL into a broker folder and make its mosquitto.conf use it."""
    conf_path = broker_dir / "mosquitto.conf"
    try:
        conf = conf_path.read_text(encoding="utf-8")
    except OSError as e:
        raise OSError(f"{conf_path}: {e.strerror} (is this a `provision broker` folder?)") from None
    write_public(broker_dir / CRL, (ca.dir / CRL).read_bytes())
    lines = conf.splitlines()
    if not any(ln.startswith("crlfile ") for ln in lines):
        at = next((i for i, ln in enumerate(lines) if ln.startswith("keyfile ")), None)
        if at is None:
            raise OSError(f"{conf_path}: no `keyfile` line: not a `provision broker` configuration")
        folder = lines[at].split(None, 1)[1].rsplit("/", 1)[0]
        lines.insert(at + 1, f"crlfile {folder}/{CRL}")
        conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return broker_dir / CRL
