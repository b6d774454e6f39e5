"""What every area's sub-commands share: the usage error and the `--config` option."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad usage the user can fix; printed as one line, exit 2."""


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="F",
        help="device.toml (default: $CARETERM_CONFIG, else /etc/careterm/device.toml)",
    )
