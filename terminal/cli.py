"""The `careterm` command line (SPEC 2). Each area registers its own sub-commands.

Exit status: 0 success, 2 bad usage or bad configuration (one line, no traceback), 1 other failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from terminal import __version__
from terminal.config import ConfigError

log = logging.getLogger("careterm")

# Modules with `register(subparsers)`; each adds its commands and sets `func` on them.
AREAS = (
    "terminal.commands",
    "rating_pad.cli",
    "kiosk.cli",
    "terminal.demo",
    "drivers.cli",
    "provisioning.cli",
    "central.cli",
)


class UsageError(Exception):
    """Bad usage the user can fix; printed as one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="careterm", description="Hospital lobby kiosks and window rating pads over MQTT."
    )
    parser.add_argument("--version", action="version", version=f"careterm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in AREAS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue  # the area is not part of this build
            raise
        mod.register(sub)
    return parser


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="F",
        help="device.toml (default: $CARETERM_CONFIG, else /etc/careterm/device.toml)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from terminal.logs import setup_logging

    setup_logging(getattr(args, "verbose", False))
    try:
        rc = args.func(args)
    except ConfigError as e:
        print(f"careterm: {e}", file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"careterm: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line for the user; the traceback only with -v
        if getattr(args, "verbose", False):
            log.exception("failed")
        print(f"careterm: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
