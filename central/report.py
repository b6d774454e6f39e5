"""`site report`: satisfaction figures per window, clerk, department, hour or day (SPEC 8, 9.3).

Figures come from `central.report_model`; `central.report_text` writes the table and the CSV,
`central.report_html` the page. This module reads the command's inputs and picks the renderer.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from central import report_html, report_text
from central.db import create_schema, open_db
from central.report_model import build_report, parse_day
from terminal.cliutil import UsageError


def load_windows(path: str) -> dict[str, str]:
    """windows.csv: columns `window,department` (department id or name, as the report should show)."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UsageError(f"--windows {path}: {e.strerror}") from None
    rd = csv.DictReader(io.StringIO(text))
    if not rd.fieldnames or not {"window", "department"} <= set(rd.fieldnames):
        raise UsageError(f"{path}: row 1: the header needs the columns window,department")
    out: dict[str, str] = {}
    for i, row in enumerate(rd, start=2):
        w, d = (row.get("window") or "").strip(), (row.get("department") or "").strip()
        if not w or not d:
            raise UsageError(f"{path}: row {i}: window and department must both be filled in")
        out[w] = d
    return out


def load_staff_names(path: str) -> dict[str, str]:
    """Staff number -> name from the published staff list (`site publish staff`)."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"--staff {path}: {e}") from None
    if not isinstance(data, list):
        raise UsageError(f"--staff {path}: expected the staff list as published (a JSON array)")
    return {str(s.get("staff")): str(s.get("name", "")) for s in data if isinstance(s, dict)}


def render_report(args: argparse.Namespace) -> str:
    day_from = parse_day(args.date_from, "--from")
    day_to = parse_day(args.date_to, "--to")
    if args.by == "department" and not args.windows:
        raise UsageError(
            "--by department needs --windows windows.csv (columns window,department): "
            "ratings carry a window, not a department"
        )
    windows = load_windows(args.windows)
    names = load_staff_names(args.staff)
    # A mistyped SQLite path is refused, not made into an empty database whose report
    # would say "no ratings"; a database `site collect` made but has not filled yet gives an
    # empty report.
    engine = open_db(args.db, create=False, must_exist=True)
    create_schema(engine)
    report = build_report(
        engine,
        by=args.by,
        day_from=day_from,
        day_to=day_to,
        timezone=args.timezone,
        windows=windows,
        names=names,
        with_delivery=args.format != "csv",
    )
    if args.format == "csv":
        return report_text.to_csv(report)
    if args.format == "table":
        return report_text.to_table(report)
    return report_html.render_html(report, args.title or "窗口服务满意度报告 Service satisfaction")
