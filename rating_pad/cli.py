"""`careterm pad [--config F] [--headless]`."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("careterm.pad")


def register(sub: argparse._SubParsersAction) -> None:
    from terminal.cliutil import add_config_arg

    p = sub.add_parser("pad", help="run the window rating pad")
    add_config_arg(p)
    p.add_argument("--headless", action="store_true", help="no screen: keypad buttons only")
    p.set_defaults(func=cmd_pad)


def cmd_pad(args: argparse.Namespace) -> int:
    from rating_pad.runner import run_pad
    from terminal.config import ConfigError, config_path, load_config

    path = config_path(args.config)
    cfg = load_config(path)
    if cfg.device.role != "rating_pad":
        raise ConfigError(
            path, "device.role", f'is {cfg.device.role!r}; `careterm pad` needs "rating_pad"'
        )
    return run_pad(cfg, path, headless=args.headless)
