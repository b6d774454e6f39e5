"""`careterm site ...`: roster, publishing, collector, reports and alert forwarding (SPEC 8)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

from central.alerts import AlertOptions, run_alerts
from central.collector import CollectOptions, run_collector
from central.dashboard import cli as dashboard_cli
from central.db import FIRST_FILE_WAIT_S, open_db
from central.mqtt import (
    DEFAULT_SESSION_EXPIRY_S,
    add_broker_args,
    broker_options,
    default_client_id,
    publish_retained,
)
from central.publish import load_publishable, retained_expiry_s, site_topic
from central.report import load_staff_names, render_report
from central.report_model import gap_rows
from central.roster import build_roster_file
from terminal.cliutil import UsageError

PUBLISH_KINDS = ("roster", "directory", "staff", "survey")
DEFAULT_SITE = "main"  # the site of SPEC 3's example configuration


def register(sub: argparse._SubParsersAction) -> None:
    site = sub.add_parser("site", help="site-side tools: roster, collector, reports, alerts")
    ssub = site.add_subparsers(dest="site_command", metavar="SITE_COMMAND", required=True)

    roster = ssub.add_parser("roster", help="build or publish the day's appointment roster")
    rsub = roster.add_subparsers(dest="roster_command", metavar="ROSTER_COMMAND", required=True)
    b = rsub.add_parser("build", help="HIS export CSV -> roster JSON on stdout (SPEC 6.5)")
    b.add_argument("--csv", required=True, metavar="HIS.csv")
    b.add_argument("--salt-file", required=True, metavar="F", help="the site salt (site.salt)")
    b.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the roster's day")
    b.add_argument(
        "--utc-offset",
        default="+08:00",
        metavar="+HH:MM",
        help="offset for times without one (default +08:00)",
    )
    b.add_argument("--encoding", default="", help="CSV encoding (default: UTF-8, else GB18030)")
    b.add_argument("--out", default="", metavar="F", help="write here instead of stdout")
    b.add_argument(
        "--allow-empty",
        action="store_true",
        help="write a roster even when no appointment is on --date",
    )
    b.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN|FILE",
        help="the export's column for a roster field (e.g. --map queue_no=候诊序号), or a TOML "
        "file of such pairs; repeatable (Chinese headers like 预约号, 姓名 need none)",
    )
    b.add_argument(
        "--directory",
        default="",
        metavar="directory.json",
        help="the published directory: department ids by department name, for exports "
        "without a department_id (科室代码) column",
    )
    b.add_argument(
        "--force-date",
        action="store_true",
        help="build for --date although it is not today/tomorrow (times without dates) or "
        "is in the past or over a week ahead",
    )
    b.set_defaults(func=_roster_build)
    p = rsub.add_parser("publish", help="publish a roster JSON (retained, QoS 1)")
    add_broker_args(p)
    p.add_argument("file", metavar="roster.json")
    _add_site(p)
    p.set_defaults(func=_publish, kind="roster")

    pub = ssub.add_parser("publish", help="publish roster, directory, staff or survey (retained)")
    pub.add_argument("kind", choices=PUBLISH_KINDS)
    pub.add_argument("file", metavar="FILE")
    add_broker_args(pub)
    _add_site(pub)
    pub.set_defaults(func=_publish)

    c = ssub.add_parser("collect", help="store every event once, ack devices, chase gaps")
    add_broker_args(c)
    c.add_argument(
        "--db",
        default="sqlite:///careterm-site.db",
        metavar="URL",
        help="sqlite:///path.db (default careterm-site.db) or postgresql+psycopg://...",
    )
    c.add_argument("--site", default="+", metavar="S", help="only this site (default: all)")
    c.add_argument(
        "--group",
        default="careterm-collect",
        metavar="NAME",
        help="shared-subscription group: collectors in one group share the load",
    )
    c.add_argument(
        "--client-id",
        default="",
        metavar="ID",
        help="MQTT client id (default <group>-<host>); unique per collector, stable across restarts",
    )
    c.add_argument(
        "--gap-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="ask for a resend of a gap that has not filled after S seconds (default 60)",
    )
    c.add_argument(
        "--ping-interval",
        type=float,
        default=300.0,
        metavar="S",
        help="ask online devices for their last seq every S seconds (default 300)",
    )
    _add_session_expiry(c)
    c.set_defaults(func=_collect)

    r = ssub.add_parser("report", help="satisfaction report: table, CSV or HTML")
    r.add_argument("--db", default="sqlite:///careterm-site.db", metavar="URL")
    r.add_argument("--from", dest="date_from", default="", metavar="YYYY-MM-DD")
    r.add_argument("--to", dest="date_to", default="", metavar="YYYY-MM-DD")
    r.add_argument(
        "--by", default="window", choices=("window", "staff", "department", "hour", "day")
    )
    r.add_argument("--format", default="table", choices=("table", "csv", "html"))
    r.add_argument(
        "--windows",
        default="",
        metavar="windows.csv",
        help="window -> department mapping (columns window,department) for --by department",
    )
    r.add_argument(
        "--staff",
        default="",
        metavar="staff.json",
        help="staff directory (as published) to show names next to staff numbers",
    )
    r.add_argument(
        "--timezone",
        default="Asia/Shanghai",
        metavar="ZONE",
        help="IANA zone for days and hours (default Asia/Shanghai, the devices' default)",
    )
    r.add_argument("--title", default="", help="HTML page title")
    r.add_argument("--out", default="", metavar="F", help="write here instead of stdout")
    r.set_defaults(func=_report)

    g = ssub.add_parser(
        "gaps", help="list detected gaps (open, filled, lost, before, superseded) as JSON lines"
    )
    g.add_argument("--db", default="sqlite:///careterm-site.db", metavar="URL")
    g.add_argument(
        "--state", default="", choices=("", "open", "filled", "lost", "before", "superseded")
    )
    g.set_defaults(func=_gaps)

    a = ssub.add_parser(
        "alerts", help="forward every alert stored in the site database to a webhook (or print it)"
    )
    a.add_argument(
        "--db",
        default="sqlite:///careterm-site.db",
        metavar="URL",
        help="the site database `site collect` writes (default sqlite:///careterm-site.db)",
    )
    a.add_argument("--webhook", default="", metavar="URL", help="POST each alert as JSON here")
    a.add_argument(
        "--staff",
        default="",
        metavar="staff.json",
        help="staff directory (as published) to put clerks' names into the alerts",
    )
    a.add_argument(
        "--retry-min",
        type=float,
        default=1.0,
        metavar="S",
        help="first wait before retrying a failed webhook call (default 1)",
    )
    a.add_argument(
        "--retry-max",
        type=float,
        default=300.0,
        metavar="S",
        help="longest wait between webhook retries (default 300)",
    )
    a.set_defaults(func=_alerts)

    dashboard_cli.register(ssub)  # `site dashboard`, `site users` (SPEC 9.7)


def _add_session_expiry(p: argparse.ArgumentParser) -> None:

    p.add_argument(
        "--session-expiry",
        type=int,
        default=DEFAULT_SESSION_EXPIRY_S,
        metavar="S",
        help="how long the broker keeps this tool's session while it is stopped "
        f"(default {DEFAULT_SESSION_EXPIRY_S}; see docs/site.md, Scaling)",
    )


def _add_site(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--site",
        default=os.environ.get("CARETERM_SITE", ""),
        metavar="S",
        help="site segment of the topic (default $CARETERM_SITE, else 'main')",
    )


def _write(text: str, out: str) -> None:
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def _roster_build(args: argparse.Namespace) -> int:

    roster, notes = build_roster_file(
        args.csv,
        args.salt_file,
        args.date,
        utc_offset=args.utc_offset,
        encoding=args.encoding,
        allow_empty=args.allow_empty,
        column_map=args.map,
        directory=args.directory,
        force_date=args.force_date,
    )

    for n in notes:
        print(f"careterm: {n}", file=sys.stderr)
    _write(json.dumps(roster, ensure_ascii=False, indent=1) + "\n", args.out)
    return 0


def _publish(args: argparse.Namespace) -> int:

    if not args.site:
        args.site = DEFAULT_SITE
        print(
            f"careterm: no --site given: publishing to site {DEFAULT_SITE!r} (the devices' "
            "[device].site)",
            file=sys.stderr,
        )
    payload, summary = load_publishable(args.kind, args.file)
    topic = site_topic(args.topic_root, args.site, args.kind)
    expiry = retained_expiry_s(args.kind, payload, datetime.now().astimezone())
    publish_retained(broker_options(args), topic, payload, expiry_s=expiry)
    kept = "" if expiry is None else f", kept by the broker {expiry // 3600} h"
    print(f"published {summary} to {topic} (retained{kept})")
    return 0


def _collect(args: argparse.Namespace) -> int:

    if args.gap_timeout <= 0 or args.ping_interval <= 0:
        raise UsageError("--gap-timeout and --ping-interval must be positive seconds")
    broker = broker_options(args)
    engine = open_db(args.db, writer=True)
    opts = CollectOptions(
        topic_root=args.topic_root,
        site=args.site,
        group=args.group,
        client_id=args.client_id or default_client_id(args.group),
        gap_timeout_s=args.gap_timeout,
        ping_interval_s=args.ping_interval,
        session_expiry_s=max(0, args.session_expiry),
        tick_s=min(1.0, args.gap_timeout / 4),
    )
    return run_collector(engine, broker, opts)


def _report(args: argparse.Namespace) -> int:

    _write(render_report(args), args.out)
    return 0


def _gaps(args: argparse.Namespace) -> int:

    for row in gap_rows(open_db(args.db, must_exist=True), args.state):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _alerts(args: argparse.Namespace) -> int:

    if args.webhook and not args.webhook.startswith(("http://", "https://")):
        raise UsageError(f"--webhook {args.webhook!r}: use an http:// or https:// URL")
    if not 0 < args.retry_min <= args.retry_max:
        raise UsageError("--retry-min and --retry-max must be positive, min <= max (seconds)")
    opts = AlertOptions(
        webhook=args.webhook,
        retry_min_s=args.retry_min,
        retry_max_s=args.retry_max,
        staff_names=load_staff_names(args.staff),
    )
    engine = open_db(args.db, writer=True, must_exist=True, wait_s=FIRST_FILE_WAIT_S)
    return run_alerts(engine, opts)
