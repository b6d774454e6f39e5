"""`careterm config check` and `careterm outbox stats|list`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from terminal.cliutil import add_config_arg
from terminal.config import ConfigError, config_path, file_problems, load_config
from terminal.outbox import Outbox, outbox_path


def register(sub: argparse._SubParsersAction) -> None:
    cfg = sub.add_parser("config", help="device configuration")
    csub = cfg.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    check = csub.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    ob = sub.add_parser("outbox", help="inspect stored events")
    osub = ob.add_subparsers(dest="outbox_cmd", metavar="ACTION", required=True)
    st = osub.add_parser("stats", help="how many events wait, and how old the oldest is")
    add_config_arg(st)
    st.set_defaults(func=cmd_outbox_stats)
    ls = osub.add_parser("list", help="one JSON line per stored event")
    add_config_arg(ls)
    ls.add_argument("--state", choices=("all", "waiting", "sent"), default="all")
    ls.add_argument("--payload", action="store_true", help="include the event payload")
    ls.set_defaults(func=cmd_outbox_list)


def cmd_config_check(args: argparse.Namespace) -> int:
    """Exit 0 when the file is valid and every path in it can work; 2 with one line per
    problem (`FILE: section.key: problem`) otherwise."""
    cfg = load_config(args.file)
    problems = file_problems(cfg)
    if len(problems) > 1:
        for key, problem in problems[:-1]:
            print(ConfigError(args.file, key, problem), file=sys.stderr)
    if problems:
        raise ConfigError(args.file, *problems[-1])
    print(f"{args.file}: ok ({cfg.device.role} {cfg.device.id} at site {cfg.device.site})")
    return 0


def _open(args: argparse.Namespace) -> Outbox:
    cfg = load_config(config_path(args.config))
    path = outbox_path(cfg.data_dir)
    if not path.exists():
        raise ConfigError(
            config_path(args.config),
            "device.data_dir",
            f"no outbox at {path} (has this device run yet?)",
        )
    # Read-only: inspecting never recovers, migrates or moves a file (the service does that).
    return Outbox(
        path,
        device=cfg.device.id,
        site=cfg.device.site,
        topic_root=cfg.mqtt.topic_root,
        readonly=True,
    )


def cmd_outbox_stats(args: argparse.Namespace) -> int:
    ob = _open(args)
    st = ob.stats()
    print(
        json.dumps(
            {
                "epoch": ob.epoch,
                "last_seq": st.last_seq,
                "waiting_for_broker": st.waiting,
                "oldest_waiting_s": st.oldest_waiting_s,
                "sent_waiting_for_site_ack": st.sent_unacked,
                "oldest_unacked_s": st.oldest_unacked_s,
                "site_acked_seq": st.site_acked_seq,
                "session": ob.meta("session"),
                "size_bytes": st.size_bytes,
                "kept_synced_s": st.kept_s,
            },
            ensure_ascii=False,
        )
    )
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    ob = _open(args)
    now = time.time()
    for ev in ob.iter_all(args.state):
        row = {
            "seq": ev.seq,
            "id": ev.id,
            "type": ev.type,
            "topic": ev.topic,
            "state": "waiting" if ev.sent_at is None else "sent",
            "age_s": round(now - ev.created, 1),
        }
        if args.payload:
            row["payload"] = json.loads(ev.payload)
        print(json.dumps(row, ensure_ascii=False))
    return 0
