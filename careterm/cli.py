"""The `careterm` command line (SPEC 2): the composition root. Each area registers its commands.

Exit status: 0 success, 2 bad usage or bad configuration (one line, no traceback), 1 other failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from kiosk import cli as kiosk_cli
from rating_pad import cli as rating_pad_cli
from terminal import __version__, startup_gc
from terminal.cliutil import UsageError
from terminal.config import ConfigError
from terminal.lifecycle import forbid_core_dumps
from terminal.logs import setup_logging

log = logging.getLogger("careterm")

DEVICE_RUNS = {"pad": rating_pad_cli, "kiosk": kiosk_cli}
"""What a device's service starts at every boot: `careterm kiosk` and `careterm pad` build a parser
of their own area only, so that they never import the site tools, provisioning, the demo and the
outbox commands (SQLAlchemy, cryptography, the ESC/POS printer stack, the outbox): ~0.6 s of CPU
at start-up on a desktop, several seconds on a Pi-class kiosk (issue 16)."""


def areas() -> tuple[ModuleType, ...]:
    """Each area adds its sub-commands and sets `func` on them; `--help` lists them in this order."""
    # Imported here, not at the top: see DEVICE_RUNS.
    from careterm import demo
    from central import cli as central_cli
    from drivers import cli as drivers_cli
    from provisioning import cli as provisioning_cli
    from terminal import commands

    return (commands, rating_pad_cli, kiosk_cli, demo, drivers_cli, provisioning_cli, central_cli)


def device_run(argv: Sequence[str]) -> ModuleType | None:
    """The area of `careterm [-v] kiosk|pad ...`, or None for any other command line."""
    for arg in argv:
        if arg in ("-v", "--verbose"):
            continue
        return DEVICE_RUNS.get(arg)
    return None


def build_parser(only: ModuleType | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (`only`) one area's commands with the global options."""
    parser = argparse.ArgumentParser(
        prog="careterm", description="Hospital lobby kiosks and window rating pads over MQTT."
    )
    parser.add_argument("--version", action="version", version=f"careterm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in (only,) if only is not None else areas():
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    device = device_run(sys.argv[1:] if argv is None else argv)
    if device is not None:
        forbid_core_dumps()
        startup_gc.pause()  # until the device is up (terminal.startup_gc)
    try:
        return _run(build_parser(device), argv)
    finally:
        startup_gc.resume()


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
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
    except BrokenPipeError:
        # The reader went away (`careterm doctor | head`): not the command's fault, and no
        # message. Point stdout at /dev/null so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # one line for the user; the traceback only with -v
        if getattr(args, "verbose", False):
            log.exception("failed")
        print(f"careterm: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
