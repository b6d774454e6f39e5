"""`careterm hw list` and `careterm hw test card-reader|buttons|printer` (SPEC 2): the technician's bench tools.

JSON lines go to stdout; device state changes go to stderr so a technician sees "absent",
"unplugged" and the like while reads scroll by.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from typing import Any

from drivers.buttons.factory import open_keypad
from drivers.card_reader.factory import make_classifier, open_card_reader
from drivers.hwlist import list_all
from drivers.printer.document import QR, Document, Feed, Rule, Text
from terminal.cliutil import UsageError, add_config_arg
from terminal.config import ConfigError, config_path, load_config


def register(sub: argparse._SubParsersAction) -> None:
    hw = sub.add_parser("hw", help="list and test the hardware")
    hsub = hw.add_subparsers(dest="hw_cmd", metavar="ACTION", required=True)
    ls = hsub.add_parser("list", help="candidate serial ports, input devices, USB printers")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=cmd_list)

    test = hsub.add_parser("test", help="exercise one configured device")
    tsub = test.add_subparsers(dest="hw_device", metavar="DEVICE", required=True)
    for name, fn, what in (
        ("card-reader", cmd_test_card_reader, "read cards: one JSON line per read"),
        ("buttons", cmd_test_buttons, "one JSON line per key press"),
    ):
        p = tsub.add_parser(name, help=what)
        add_config_arg(p)
        p.add_argument(
            "--count", type=int, metavar="N", help="stop after N (exit 1 if fewer by --timeout)"
        )
        p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
        p.set_defaults(func=fn)
    pr = tsub.add_parser("printer", help="print a test ticket and the printer status as JSON")
    add_config_arg(pr)
    pr.set_defaults(func=cmd_test_printer)


def _load(args: argparse.Namespace) -> tuple[Any, str]:
    path = config_path(args.config)
    return load_config(path), path


def _check_limits(args: argparse.Namespace) -> None:
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be above 0 seconds")


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _report_state(device: Any) -> None:
    def show(state: Any, detail: str) -> None:
        print(
            f"{device.name}: {state.value}{f' ({detail})' if detail else ''}",
            file=sys.stderr,
            flush=True,
        )

    device.on_state(show)


def _collect(args: argparse.Namespace, events: queue.Queue, emit: Any, what: str) -> int:
    """Print events until --count or --timeout; exit 1 when --count was not reached."""
    end = time.monotonic() + args.timeout if args.timeout else None
    seen = 0
    while args.count is None or seen < args.count:
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            break
        try:
            item = events.get(timeout=min(left, 0.5) if left is not None else 0.5)
        except queue.Empty:
            continue
        if item is None:
            break
        emit(item)
        seen += 1
    if args.count is not None and seen < args.count:
        print(f"careterm: {seen} of {args.count} {what} within {args.timeout} s", file=sys.stderr)
        return 1
    return 0


def _stdin_lines(events: queue.Queue, fn: Any) -> None:
    """For the `keyboard` drivers: each line typed (or piped) on stdin is one input."""

    def run() -> None:
        for line in sys.stdin:
            fn(line.rstrip("\r\n"))
        events.put(None)

    threading.Thread(target=run, name="stdin", daemon=True).start()


def cmd_list(args: argparse.Namespace) -> int:
    found = list_all()
    if args.json:
        for f in found:
            _print_json(f.to_json())
        return 0
    titles = {"serial": "Serial ports", "input": "Input devices", "usb_printer": "USB printers"}
    for kind, title in titles.items():
        rows = [f for f in found if f.type == kind]
        print(f"{title}:")
        if not rows:
            print("  (none)")
        for f in rows:
            extra = " ".join(
                x for x in (f.usb and f"[{f.usb}]", f.description and f"{f.description!r}") if x
            )
            print(f"  {f.device}  {extra}".rstrip())
            for link in f.by_id:
                print(f"      {link}")
    return 0


def cmd_test_card_reader(args: argparse.Namespace) -> int:
    _check_limits(args)
    cfg, path = _load(args)
    if cfg.card_reader.driver == "none":
        raise ConfigError(path, "card_reader.driver", 'is "none": there is no card reader to test')
    events: queue.Queue = queue.Queue()
    if cfg.card_reader.driver in ("keyboard", "sim"):
        classifier = make_classifier(cfg, path)

        def typed(line: str) -> None:
            read = classifier.classify(line)
            if read is not None:
                events.put(read)

        _stdin_lines(events, typed)
        return _collect(args, events, lambda r: _print_json(r.to_json()), "reads")
    reader = open_card_reader(cfg, path)
    assert reader is not None
    _report_state(reader)
    reader.start(events.put)
    try:
        return _collect(args, events, lambda r: _print_json(r.to_json()), "reads")
    finally:
        reader.stop()


def cmd_test_buttons(args: argparse.Namespace) -> int:
    _check_limits(args)
    cfg, path = _load(args)
    keys = cfg.buttons.keys

    def emit(name: str) -> None:
        _print_json({"key": name, "action": keys.get(name)})

    events: queue.Queue = queue.Queue()
    if cfg.buttons.driver == "touch":
        raise ConfigError(
            path, "buttons.driver", 'is "touch": the screen\'s buttons have no device to test'
        )
    if cfg.buttons.driver in ("keyboard", "sim"):
        _stdin_lines(events, lambda line: [events.put(c) for c in line if c in keys])
        return _collect(args, events, emit, "key presses")
    pad = open_keypad(cfg, path)
    assert pad is not None
    _report_state(pad)
    pad.start(lambda press: events.put(press.key))
    try:
        return _collect(args, events, emit, "key presses")
    finally:
        pad.stop()


def test_ticket(now: str) -> Any:

    return Document(
        (
            Text("careterm 打印测试", align="center", bold=True),
            Text("Printer test", align="center"),
            Rule(),
            Text("A001", align="center", double=True),
            Text("中文: 心内科 门诊3楼 305诊室"),
            Text(f"时间 {now}"),
            Rule("="),
            QR("CT1:TEST-0001", size=6),
            Feed(1),
        ),
        title="printer-test",
    )


def cmd_test_printer(args: argparse.Namespace) -> int:
    # python-escpos loads its printer capability tables (~0.3 s): only for this command
    from drivers.printer.factory import open_printer

    cfg, path = _load(args)
    if cfg.printer.driver == "none":
        raise ConfigError(path, "printer.driver", 'is "none": there is no printer to test')
    printer = open_printer(cfg, config_file=path, poll_every=None)
    assert printer is not None
    try:
        result = printer.print_document(
            test_ticket(time.strftime("%Y-%m-%d %H:%M:%S")), timeout=10.0
        )
        status = printer.status()
        out: dict[str, Any] = {
            "printed": result.ok,
            "error": result.error,
            "state": printer.state.value,
            **status.to_json(),
        }
        tickets = getattr(printer, "tickets", None)
        if tickets:
            out["file"] = str(tickets[-1])
        _print_json(out)
        return 0 if result.ok else 1
    finally:
        printer.close()
