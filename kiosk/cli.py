"""`careterm kiosk [--config F] [--windowed]`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from terminal.cliutil import add_config_arg

    p = sub.add_parser("kiosk", help="run the lobby kiosk")
    add_config_arg(p)
    p.add_argument(
        "--windowed",
        action="store_true",
        help="run in a window instead of fullscreen (setup and testing)",
    )
    p.set_defaults(func=cmd_kiosk)


def cmd_kiosk(args: argparse.Namespace) -> int:
    from terminal.config import ConfigError, config_path, load_config

    path = config_path(args.config)
    cfg = load_config(path)
    if cfg.device.role != "kiosk":
        raise ConfigError(
            path, "device.role", f'is {cfg.device.role!r}; `careterm kiosk` needs "kiosk"'
        )
    from kiosk.runner import run_kiosk

    return run_kiosk(cfg, path, windowed=args.windowed)
