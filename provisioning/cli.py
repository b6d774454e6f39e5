"""`careterm provision ...` (SPEC 7) and `careterm doctor` (SPEC 2)."""

from __future__ import annotations

import argparse
import copy
import ipaddress
import os
import re
import sys
from pathlib import Path

from provisioning import bundle as bundles
from provisioning.broker import install_crl, role_files, write_broker_dir
from provisioning.bundle import BundleError, read_bundle
from provisioning.certs import CRL, CAError, SiteCA, role_identity
from provisioning.doctor import run_checks
from provisioning.install import InstallError, apply, exclusive, make_plan
from terminal.cliutil import UsageError, add_config_arg
from terminal.config import NAME_PATTERN, ConfigError, config_path
from terminal.topics import ROOT_RE


def register(sub: argparse._SubParsersAction) -> None:
    doc = sub.add_parser("doctor", help="check config, data dir, clock, broker, TLS and devices")
    add_config_arg(doc)
    doc.set_defaults(func=cmd_doctor)

    prov = sub.add_parser("provision", help="site CA, device bundles, broker config, install")
    psub = prov.add_subparsers(dest="provision_cmd", metavar="ACTION", required=True)

    ca = psub.add_parser("ca", help="the site certificate authority")
    casub = ca.add_subparsers(dest="ca_cmd", metavar="ACTION", required=True)
    init = casub.add_parser("init", help="create a site CA (its key never leaves the folder)")
    init.add_argument("--dir", required=True, metavar="D")
    init.set_defaults(func=cmd_ca_init)

    dev = psub.add_parser("device", help="make a device bundle (config, certificate, key, salt)")
    dev.add_argument("--ca", required=True, metavar="D", help="the CA folder")
    dev.add_argument("--id", required=True, metavar="ID", help="device id, e.g. pad-w03")
    dev.add_argument("--role", required=True, choices=("rating_pad", "kiosk"))
    dev.add_argument("--site", required=True, metavar="S")
    dev.add_argument("--broker", required=True, metavar="URL", help="e.g. mqtts://broker:8883")
    dev.add_argument(
        "--window",
        metavar="W",
        default="",
        help="window id a rating pad reports (required for rating_pad)",
    )
    dev.add_argument("--window-name", metavar="NAME", default="", help="window name shown")
    dev.add_argument("--topic-root", metavar="R", default="careterm")
    dev.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="set any device.toml key, e.g. buttons.device=/dev/serial/by-id/...",
    )
    dev.add_argument("--days", type=int, default=730, help="certificate lifetime (default 730)")
    dev.add_argument("--out", required=True, metavar="BUNDLE.tar.gz")
    dev.set_defaults(func=cmd_device)

    brk = psub.add_parser("broker", help="write the site broker's Mosquitto configuration")
    brk.add_argument("--ca", required=True, metavar="D")
    brk.add_argument("--site", required=True, metavar="S")
    brk.add_argument("--out", required=True, metavar="DIR")
    brk.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="broker DNS name or IP address devices use (repeat for each)",
    )
    brk.add_argument("--port", type=int, default=8883)
    brk.add_argument(
        "--bind",
        metavar="ADDRESS",
        default="",
        help="address the listener binds to (default: every interface)",
    )
    brk.add_argument(
        "--collectors",
        type=int,
        default=1,
        metavar="N",
        help="collector identities to issue (collector.crt, collector-2.crt, ...): one per "
        "`site collect` process (default 1)",
    )
    brk.add_argument("--topic-root", metavar="R", default="careterm")
    brk.add_argument(
        "--dest",
        metavar="DIR",
        default="",
        help="absolute folder the files will be copied to on the broker host (default: --out)",
    )
    brk.set_defaults(func=cmd_broker)

    rev = psub.add_parser("revoke", help="revoke every certificate of a device (lost, stolen)")
    rev.add_argument("--ca", required=True, metavar="D")
    rev.add_argument(
        "--id",
        required=True,
        metavar="ID",
        help="device id (or a site identity such as collector.<site>)",
    )
    rev.add_argument(
        "--broker-dir",
        metavar="DIR",
        default="",
        help="a `provision broker` folder to update with the new crl.pem",
    )
    rev.set_defaults(func=cmd_revoke)

    ins = psub.add_parser("install", help="install a bundle on this device (as root)")
    ins.add_argument("--bundle", required=True, metavar="BUNDLE.tar.gz")
    ins.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="install below DIR instead of / (writes files only; records commands)",
    )
    ins.set_defaults(func=cmd_install)


def _usage(msg: str) -> Exception:

    return UsageError(msg)


def _name(kind: str, value: str) -> str:

    # fullmatch: with re.match, `$` also matches before a trailing newline, and a site name
    # such as "main\n" would split the ACL's and the configuration's lines.
    if not re.fullmatch(NAME_PATTERN, value):
        raise _usage(
            f"--{kind} {value!r}: use 1-32 lower-case letters, digits and '-', "
            "starting with a letter or digit"
        )
    return value


def cmd_ca_init(args: argparse.Namespace) -> int:

    try:
        ca = SiteCA.init(args.dir)
    except CAError as e:
        raise _usage(str(e)) from None
    print(f"site CA created in {ca.dir} (keep ca.key there, offline and backed up)")
    return 0


def cmd_device(args: argparse.Namespace) -> int:

    device_id = _name("id", args.id)
    site = _name("site", args.site)
    if args.role == "rating_pad" and not args.window:
        raise _usage("a rating_pad needs --window (the window id it reports, e.g. W03)")
    if not 1 <= args.days <= 3650:
        raise _usage("--days must be between 1 and 3650")
    data = bundles.device_settings(
        device_id=device_id,
        role=args.role,
        site=site,
        broker=args.broker,
        window=args.window,
        window_name=args.window_name,
        topic_root=args.topic_root,
    )
    try:
        before = copy.deepcopy(data)
        for assignment in args.set:
            bundles.apply_override(data, assignment)
        bundles.check_fixed(before, data)
        cfg = bundles.validate(data)
    except bundles.BundleError as e:
        raise _usage(str(e)) from None
    except ConfigError as e:
        source = "--set" if args.set else "the arguments"
        raise _usage(f"{source} would give an invalid device.toml: {e.key}: {e.problem}") from None
    if not cfg.mqtt.tls:
        print(
            f"careterm: warning: {args.broker} is not mqtts://; the site broker made by "
            "`provision broker` accepts only TLS with certificates",
            file=sys.stderr,
        )
    out = _bundle_path(args.out, device_id)
    ca = SiteCA(args.ca)
    try:
        salt = ca.salt()
        earlier = ca.valid_for(device_id)
        issued = ca.issue_device(device_id, site, days=args.days)
    except CAError as e:
        raise _usage(str(e)) from None
    if earlier:
        since = min(c.not_valid_before_utc for c in earlier).date().isoformat()
        print(
            f"careterm: warning: {device_id} already has {len(earlier)} valid certificate(s) "
            f"from this CA (since {since}). Renewing or replacing that device: fine; to shut "
            f"the old one out, `careterm provision revoke --ca {args.ca} --id {device_id}` "
            "before making its new bundle. A different device: use another --id (two devices "
            "with one id push each other off the broker)",
            file=sys.stderr,
        )
    header = (
        f"careterm device {device_id} ({args.role}) at site {site}.\n"
        "Written by `careterm provision device`; check it with `careterm config check`."
    )
    files = {
        "device.toml": bundles.render_toml(data, header).encode("utf-8"),
        "device.crt": issued.cert,
        "device.key": issued.key,
        "ca.crt": ca.cert_pem,
        "site.salt": salt,
    }
    known = ca.server_names()
    if known and cfg.mqtt.host not in known:
        print(
            f"careterm: warning: no broker certificate from this CA names {cfg.mqtt.host!r} "
            f"(they name {', '.join(sorted(known))}): the device will refuse the broker; "
            "use one of those in --broker, or add it with `provision broker --host`",
            file=sys.stderr,
        )
    if args.role == "kiosk" and args.window:
        print("careterm: warning: --window is for rating pads; a kiosk ignores it", file=sys.stderr)
    try:
        bundles.write_bundle(out, files)
    except OSError as e:
        raise _usage(
            f"--out {out}: cannot write the bundle ({e.strerror or e}); nothing was written "
            "there: free some space or choose another --out, then run the command again"
        ) from None
    print(
        f"{out}: bundle for {device_id} ({args.role}, site {site}); it holds the device's "
        "private key: copy it to the device, install it, then delete it"
    )
    return 0


def _bundle_path(value: str, device_id: str) -> Path:
    """--out, checked before anything is issued: a file name in a folder this user may write."""
    out = Path(value)
    example = out / f"{device_id}.tar.gz"
    if out.is_dir():
        raise _usage(f"--out {value}: that is a folder; name the bundle file, e.g. {example}")
    folder = next((p for p in (out.parent, *out.parent.parents) if p.exists()), Path("."))
    if not folder.is_dir():
        raise _usage(f"--out {value}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _usage(f"--out {value}: this user may not write in {folder}; choose another --out")
    if out.exists():
        print(
            f"careterm: warning: --out {value} exists and is replaced; if it is another "
            "device's bundle not installed yet, make that one again (its key is gone with it)",
            file=sys.stderr,
        )
    return out


def cmd_broker(args: argparse.Namespace) -> int:

    site = _name("site", args.site)
    if not args.host:
        raise _usage(
            "give the broker's name or address devices connect to: --host NAME "
            "(repeat for each name and IP)"
        )
    if not 1 <= args.port <= 65535:
        raise _usage(f"--port {args.port}: not a TCP port")
    if not 1 <= args.collectors <= 64:
        raise _usage(f"--collectors {args.collectors}: give 1 to 64")
    bind = _bind_address(args.bind)
    hosts = [_host(h) for h in args.host]
    root = _topic_root(args.topic_root)
    out = Path(args.out)
    if args.dest and not Path(args.dest).is_absolute():
        raise _usage(f"--dest {args.dest!r}: give an absolute folder, e.g. /etc/mosquitto/careterm")
    dest = Path(args.dest) if args.dest else out.resolve()
    try:
        write_broker_dir(
            SiteCA(args.ca),
            out,
            site=site,
            hosts=hosts,
            port=args.port,
            bind=bind,
            topic_root=root,
            collectors=args.collectors,
            dest=dest,
        )
    except CAError as e:
        raise _usage(str(e)) from None
    where_bound = f" on {bind}" if bind else ""
    print(f"{out}/mosquitto.conf: TLS on port {args.port}{where_bound} for {', '.join(args.host)}")
    for role, n, stem in role_files(args.collectors):
        print(f"  {stem}.crt/.key: identity {role_identity(role, site, n)!r}")
    where = "" if dest == out.resolve() else f"copy {out} to {dest} on the broker host, then "
    print(f"{where}run: mosquitto -c {dest}/mosquitto.conf")
    return 0


def _host_name(value: str) -> str | None:
    """`value` as an IP address (normalised) or a DNS host name; None when it is neither."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value if _HOSTNAME.fullmatch(value) else None


def _host(value: str) -> str:
    """A --host: a DNS name or an IP address, as devices write it in mqtts://HOST:PORT."""
    host = _host_name(value)
    if host is not None:
        return host
    raise _usage(
        f"--host {value!r}: give only a host name or an IP address (e.g. broker.hospital.local "
        "or 10.20.0.5), without mqtts:// or a port (the port is --port)"
    )


def _topic_root(value: str) -> str:
    if not ROOT_RE.fullmatch(value):
        raise _usage(
            f"--topic-root {value!r}: use letters, digits, '_' and '-', segments separated "
            "by '/' (no '+', '#', spaces or empty segments); the default is careterm"
        )
    return value


_HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")


def _bind_address(value: str) -> str:
    """An IP address or a host name for Mosquitto's `listener PORT ADDRESS`, or ''."""

    if not value:
        return ""
    host = _host_name(value)
    if host is not None:
        return host
    raise _usage(f"--bind {value!r}: give an IP address (e.g. 10.1.2.3) or a host name")


def cmd_revoke(args: argparse.Namespace) -> int:

    ca = SiteCA(args.ca)
    try:
        new = ca.revoke(args.id)
    except CAError as e:
        raise _usage(str(e)) from None
    done = ", ".join(f"{s:x}" for s in new) or "none new (already revoked)"
    print(f"{args.id}: revoked serials {done}; {ca.dir / CRL} updated")
    if args.broker_dir:
        try:
            path = install_crl(ca, Path(args.broker_dir))
        except OSError as e:
            raise _usage(str(e)) from None
        print(f"{path} written; restart mosquitto for it to take effect")
    else:
        print(
            f"copy {ca.dir / CRL} next to the broker's server.crt (or rerun with "
            "--broker-dir) and restart mosquitto"
        )
    return 0


def cmd_install(args: argparse.Namespace) -> int:

    root = Path(args.root).resolve()
    if root == Path("/") and os.geteuid() != 0:
        raise _usage(
            "provision install changes users, /etc and services: run it as root "
            "(sudo careterm provision install --bundle ...)"
        )
    try:
        bundle = read_bundle(args.bundle)
    except BundleError as e:
        raise _usage(str(e)) from None
    if root != Path("/"):
        root.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(root):
            plan = make_plan(bundle, root)
            apply(plan, root)
    except InstallError as e:
        print(f"careterm: install: {e}", file=sys.stderr)
        return 1
    cfg = bundle.config
    print(
        f"installed {cfg.device.id} ({cfg.device.role}, site {cfg.device.site})"
        + ("" if root == Path("/") else f" below {root} (nothing run; see the plan file)")
    )
    if root == Path("/"):
        print(f"check it: careterm doctor; then delete {args.bundle} (it holds the device key)")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:

    failed = False
    for check in run_checks(config_path(args.config)):
        print(check.line(), flush=True)
        failed = failed or check.status == "fail"
    return 1 if failed else 0
