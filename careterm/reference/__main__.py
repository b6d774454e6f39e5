"""`python -m careterm.reference [--check] [--out DIR]`: regenerate (or check) docs/reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from careterm.reference import COMMAND, DEST, generate, stale, write
from careterm.reference.topics_doc import ReferenceGap


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    p.add_argument("--out", type=Path, default=DEST, help=f"folder (default {DEST})")
    args = p.parse_args(argv)
    try:
        if args.check:
            problems = stale(args.out)
            for line in problems:
                print(f"{args.out / line}", file=sys.stderr)
            if problems:
                print(f"docs/reference is stale: run `{COMMAND}`", file=sys.stderr)
                return 1
            return 0
        for rel in write(args.out):
            print(f"wrote {args.out / rel}")
        _, undocumented = generate()
    except ReferenceGap as e:
        print(f"{COMMAND}: {e}", file=sys.stderr)
        return 1
    if undocumented:
        print(
            "configuration keys without a meaning (add a docstring under the field in "
            f"terminal/config.py): {', '.join(undocumented)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
