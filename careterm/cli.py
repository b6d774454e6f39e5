"""The `careterm` command line (SPEC 2): the composition root. Each area registers its commands.

Exit status: 0 success, 2 bad usage or bad configuration (one line, no traceback), 1 other failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from careterm import demo
from central import cli as central_cli
from drivers import cli as drivers_cli
from kiosk import cli as kiosk_cli
from provisioning import cli as provisioning_cli
from rating_pad import cli as rating_pad_cli
from terminal import __version__, commands
from terminal.cliutil import UsageError
from terminal.config import ConfigError
from terminal.logs import setup_logging

log = logging.getLogger("careterm")

# Each area adds its sub-commands and sets `func` on them; `--help` lists them in this order.
AREAS = (commands, rating_pad_cli, kiosk_cli, demo, drivers_cli, provisioning_cli, central_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="careterm", description="Hospital lobby kiosks and window rating pads over MQTT."
    )
    parser.add_argument("--version", action="version", version=f"careterm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in AREAS:
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
