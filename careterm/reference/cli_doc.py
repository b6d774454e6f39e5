"""docs/reference/cli.md from the argparse parser of `careterm` (careterm.cli.build_parser).

Built from the parser's actions, not from `format_help()`, so the page does not change with
the terminal's width or the Python version's help layout.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from careterm.reference.docstrings import one_line

HEADER = """\
# Command line reference

One console script, `careterm`. Exit status: `0` success, `2` bad usage or bad
configuration (one line naming the file, the key and what is wrong; no traceback), `1` any
other failure. Commands that read a device configuration take `--config F`; without it they
read `$CARETERM_CONFIG`, else `/etc/careterm/device.toml`. `careterm -v COMMAND ...` logs at
debug level and prints the traceback of an unexpected failure.

"""


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _helps(sub: argparse._SubParsersAction) -> dict[str, str]:
    return {a.dest: a.help or "" for a in sub._choices_actions}


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("careterm",), help_text: str = ""
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every parser below `parser` (itself first), with its command path and its help line."""
    yield path, parser, help_text
    sub = _subparsers(parser)
    if sub is None:
        return
    helps = _helps(sub)
    for name, child in sub.choices.items():
        yield from walk(child, (*path, name), helps.get(name, ""))


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        mv = action.metavar
        return " ".join(mv) if isinstance(mv, tuple) else str(mv)
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _shape(action: argparse.Action) -> str:
    mv = _metavar(action)
    if action.nargs == "?":
        return f"[{mv}]"
    if action.nargs == "*":
        return f"[{mv} ...]"
    if action.nargs == "+":
        return f"{mv} [{mv} ...]"
    return mv


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        and not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
    ]


def usage(path: tuple[str, ...], parser: argparse.ArgumentParser) -> str:
    parts = [" ".join(path)]
    for a in _visible(parser):
        if a.option_strings:
            flag = max(a.option_strings, key=len)
            shape = _shape(a)
            text = f"{flag} {shape}" if shape else flag
            repeat = " ..." if isinstance(a, argparse._AppendAction) else ""
            parts.append(text + repeat if a.required else f"[{text}]{repeat}")
        else:
            parts.append(_shape(a))
    sub = _subparsers(parser)
    if sub is not None:
        parts.append("{" + ",".join(sub.choices) + "} ...")
    return " ".join(parts)


def _default(action: argparse.Action) -> str:
    d = action.default
    if action.required and action.option_strings:
        return "required"
    if action.nargs == 0 or d in (None, "", [], argparse.SUPPRESS) or d is False:
        return ""
    return f"`{d}`"


def _argument(a: argparse.Action) -> str:
    if a.option_strings:
        names = ", ".join(f"`{o}`" for o in a.option_strings)
        shape = _shape(a)
        return f"{names} `{shape}`" if shape else names
    return f"`{_shape(a)}`"


def render(parser: argparse.ArgumentParser) -> str:
    out = [HEADER]
    commands = list(walk(parser))
    out.append("## Commands\n\n| command | what it does |\n|---|---|\n")
    for path, p, help_text in commands[1:]:
        if _subparsers(p) is None:
            out.append(f"| [`{' '.join(path)}`](#{_anchor(path)}) | {one_line(help_text)} |\n")
    for path, p, help_text in commands:
        out.append(f"\n## {' '.join(path)}\n\n")
        text = help_text or p.description or ""
        if text:
            out.append(one_line(text) + "\n\n")
        out.append(f"```\n{usage(path, p)}\n```\n")
        args = _visible(p)
        if args:
            out.append("\n| argument | default | meaning |\n|---|---|---|\n")
            for a in args:
                help_line = one_line(a.help or "")
                if a.choices is not None and a.option_strings and a.metavar is not None:
                    help_line += f" (one of {', '.join(map(str, a.choices))})"
                out.append(f"| {_argument(a)} | {_default(a)} | {help_line} |\n")
        sub = _subparsers(p)
        if sub is not None:
            helps = _helps(sub)
            out.append("\n| sub-command | what it does |\n|---|---|\n")
            for name in sub.choices:
                out.append(
                    f"| [`{name}`](#{_anchor((*path, name))}) | {one_line(helps.get(name, ''))} |\n"
                )
    return "".join(out)


def _anchor(path: tuple[str, ...]) -> str:
    """GitHub's heading anchor for `## careterm site roster build`."""
    return "-".join(path).lower()
