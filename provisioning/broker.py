"""The site broker's Mosquitto configuration: one mutual-TLS listener, the certificate's name
as username and as client id, a %u ACL for devices and one narrow ACL per site role.

Device topics in the ACL come from terminal.topics (`events/+`, `alerts/+`: exactly one
level, never `#`), the same module devices build their topics with and site tools parse them
with (SPEC 9.1).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from provisioning.certs import CRL, SiteCA, role_identity, write_public, write_secret
from terminal.topics import SITE_DOCUMENTS, acl_device_pattern, device_filter, site_document

DEVICE_WRITES = ("status", "events", "alerts", "telemetry", "reply")
DEVICE_READS = ("cmd", "ack")

MAX_QUEUED_MESSAGES = 500_000
"""Per client: QoS 1 messages Mosquitto keeps for a client (beyond those in flight) before it
drops new ones. docs/site.md, "Broker queue limits", says why this size."""
MAX_QUEUED_BYTES = 256 * 1024 * 1024
"""Per client: payload bytes of those messages; whichever limit is reached first applies."""
MAX_INFLIGHT_MESSAGES = 20
"""Unacknowledged QoS 1 messages per client in each direction, for clients that announce no
Receive Maximum of their own (the collector announces a larger one); also the Receive
Maximum the broker announces to devices."""


@dataclass(frozen=True)
class Role:
    """A site role's rights: topic filters below `R/S/` it may read and write."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    why: str


def roles(root: str, site: str) -> dict[str, Role]:
    def dev(leaf: str, name: str = "") -> str:
        # Reads of events and alerts take `#` so that the collector sees (and refuses)
        # a topic of another shape should a broker ever let one through.
        if name == "#":
            return f"{root}/{site}/+/{leaf}/#"
        if name:
            return f"{root}/{site}/+/{leaf}/{name}"
        return device_filter(root, leaf, site=site)  # type: ignore[arg-type]

    docs = tuple(site_document(root, site, d) for d in SITE_DOCUMENTS)
    return {
        "collector": Role(
            reads=(
                dev("events", "#"),
                dev("alerts", "#"),
                dev("status"),
                dev("telemetry"),
                dev("reply"),
            ),
            writes=(dev("ack"), dev("cmd", "resend"), dev("cmd", "ping")),
            why="site collect: reads what devices publish; writes acks, resend and ping",
        ),
        "alerts": Role(
            reads=(),
            writes=(),
            why="site alerts --db reads the database, not the broker: no topic at all",
        ),
        "roster": Role(
            reads=(),
            writes=docs,
            why="site publish: writes the retained roster, directory, survey and staff list",
        ),
        "dashboard": Role(
            reads=(),
            writes=(),
            why="site dashboard reads the database, not the broker: no topic at all",
        ),
        "queue": Role(
            reads=(dev("reply"), dev("events", "rating"), dev("events", "prompt")),
            writes=tuple(dev("cmd", c) for c in ("prompt", "staff", "pause", "resume")),
            why="the queue-calling system: sends prompt, staff, pause and resume commands, "
            "reads their replies and the ratings and closed prompts they lead to",
        ),
    }


ROSTER_BLIND = ("collector", "queue")
"""Site roles with topics of their own that must still not read the retained roster (the roles
with no topic at all are denied everything)."""


def render_acl(root: str, site: str, collectors: int = 1) -> str:
    lines = [
        f"# careterm broker ACL for site {site!r} (topic root {root!r}).",
        "# %u is the common name of the client's certificate (use_identity_as_username), which",
        "# is also its client id (use_username_as_clientid). Never %c: a client chooses its own",
        "# client id. Mosquitto denies whatever no line below allows; a `deny` line wins over",
        "# every allow.",
        "",
        "# Every device: publish only its own topics of the contract's shapes (`events/+`,",
        "# exactly one level: never `#`), read only its own commands and ack, and the site's",
        "# retained documents.",
    ]
    lines += [f"pattern write {acl_device_pattern(root, site, leaf)}" for leaf in DEVICE_WRITES]
    lines += [f"pattern read {acl_device_pattern(root, site, leaf)}" for leaf in DEVICE_READS]
    lines += [f"pattern read {site_document(root, site, d)}" for d in SITE_DOCUMENTS]
    for name, role in roles(root, site).items():
        count = collectors if name == "collector" else 1
        for n in range(1, count + 1):
            lines += ["", f"# {role.why}", f"user {role_identity(name, site, n)}"]
            if not role.reads and not role.writes:
                lines.append("topic deny #")
                continue
            lines += [f"topic read {t}" for t in role.reads]
            lines += [f"topic write {t}" for t in role.writes]
            if name in ROSTER_BLIND:
                # The `pattern read` lines above are for every user: the day's roster (card
                # tokens, masked names, who sees which specialty when) is for kiosks only.
                lines.append(f"topic deny {site_document(root, site, 'roster')}")
    return "\n".join(lines) + "\n"


def render_conf(
    dest: Path, *, port: int, site: str, bind: str = "", run_as: str = "", crl: bool = False
) -> str:
    d = dest
    listener = f"listener {port} {bind}" if bind else f"listener {port}"
    lines = [
        f"# careterm site broker for site {site!r}, written by `careterm provision broker`.",
        f"# Run it as is: mosquitto -c {d}/mosquitto.conf",
        "# Only clients with a certificate from the site CA get in; there is no other listener,",
        "# and none may be added without authentication (a loopback listener would bypass the ACL).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {d}/acl",
        "",
        listener,
        f"cafile {d}/ca.crt",
        f"certfile {d}/server.crt",
        f"keyfile {d}/server.key",
        *([f"crlfile {d}/{CRL}"] if crl else []),
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "# The client id is the certificate's name too: a certificate can neither take over nor",
        "# disturb another client's session by choosing its client id (SPEC 9.1).",
        "use_username_as_clientid true",
        "",
        "# Persistent sessions keep commands for devices that are away; the site `ack` covers",
        "# what Mosquitto acknowledged from memory before its next save.",
        "persistence true",
        f"persistence_location {d}/data/",
        "autosave_interval 30",
        "persistent_client_expiration 14d",
        "",
        "# Per client. A collector that falls behind a burst must not lose events here:",
        f"# {MAX_QUEUED_MESSAGES:,} messages (25 times a burst of 20,000) or"
        f" {MAX_QUEUED_BYTES // 2**20} MiB of payload,",
        "# about 0.4 GB of broker memory when full (docs/site.md, Broker queue limits).",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
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


def role_files(collectors: int = 1) -> list[tuple[str, int, str]]:
    """(role, n, file stem) of every site identity a broker folder holds."""
    out = []
    for name in roles("r", "s"):
        for n in range(1, (collectors if name == "collector" else 1) + 1):
            out.append((name, n, name if n == 1 else f"{name}-{n}"))
    return out


def write_broker_dir(
    ca: SiteCA,
    out: Path,
    *,
    site: str,
    hosts: list[str],
    port: int = 8883,
    bind: str = "",
    topic_root: str = "careterm",
    collectors: int = 1,
    run_as: str = "",
    dest: Path | None = None,
) -> list[Path]:
    """Write DIR/{mosquitto.conf, acl, ca.crt, server.crt, server.key} and one
    `<role>.crt`/`<role>.key` per site role (`collector-2.crt`, ... for more collectors).

    The configuration names its files by absolute path: `dest` when the folder will be
    copied to that place on the broker host, else where it is written.
    """
    server = ca.issue_server(hosts, site)  # first: a CA fault leaves no empty folder behind
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: bytes, secret: bool = False) -> None:
        path = out / name
        (write_secret if secret else write_public)(path, data)
        written.append(path)

    put("ca.crt", ca.cert_pem)
    put("server.crt", server.cert)
    put("server.key", server.key, secret=True)
    for role, n, stem in role_files(collectors):
        issued = ca.issue_role(role, site, n)
        put(f"{stem}.crt", issued.cert)
        put(f"{stem}.key", issued.key, secret=True)
    put("acl", render_acl(topic_root, site, collectors).encode())
    crl = ca.dir / CRL
    if crl.exists():
        put(CRL, crl.read_bytes())
    conf = render_conf(
        dest or out.resolve(), port=port, site=site, bind=bind, run_as=run_as, crl=crl.exists()
    )
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
