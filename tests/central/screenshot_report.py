"""Make docs/screenshots/report-html.png: `python -m tests.central.screenshot_report` (needs chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from central.db import open_db
from tests.central.report_data import busy_day, staff_list, store

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="careterm-report-"))
    db = f"sqlite:///{tmp}/site.db"
    engine = open_db(db)
    store(engine, busy_day())
    engine.dispose()
    staff = tmp / "staff.json"
    staff.write_text(json.dumps(staff_list(), ensure_ascii=False))
    html = tmp / "report.html"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "careterm",
            "site",
            "report",
            "--db",
            db,
            "--by",
            "staff",
            "--staff",
            str(staff),
            "--format",
            "html",
            "--out",
            str(html),
            "--title",
            "门诊收费/挂号窗口 服务满意度 2026-11-23",
        ],
        check=True,
    )
    out = ROOT / "docs" / "screenshots" / "report-html.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 1
    subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={out}",
            "--window-size=1280,1900",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
