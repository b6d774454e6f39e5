"""Make docs/screenshots/dashboard-{zh,en,wall}.png from a generated busy day:
`python -m tests.central.dashboard.screenshots` (needs Debian's chromium and chromium-driver)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from central.db import open_db
from tests.central.dashboard.browser import (
    BrowserUnavailable,
    Console,
    add_user,
    log_in,
    settle,
    start_browser,
)
from tests.central.dashboard.site_data import STAFF, fill_site
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "docs" / "screenshots"


def shoot(driver, path: Path, width: int, height: int | None = None) -> None:
    """A screenshot of the whole page at `width` (or exactly width x height)."""
    metrics = {"width": width, "height": height or 1000, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    if height is None:
        settle(0.5)
        metrics["height"] = driver.execute_script("return document.documentElement.scrollHeight")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    settle(1.0)
    driver.save_screenshot(str(path))
    print(path)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="careterm-console-"))
    db = f"sqlite:///{tmp}/site.db"
    engine = open_db(db)
    ids = fill_site(engine)
    engine.dispose()
    staff = tmp / "staff.json"
    staff.write_text(json.dumps(STAFF, ensure_ascii=False), encoding="utf-8")
    console = Console(
        tmp,
        db,
        "--staff",
        str(staff),
        "--timezone",
        "Asia/Shanghai",
        "--site-name",
        "门诊楼",
    )
    add_user(console.users, "wang.fang", "demo-password")
    console.start()
    try:
        driver = start_browser(1920, 1080)
    except BrowserUnavailable as e:
        console.stop()
        print(e, file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        log_in(driver, console.url, "wang.fang", "demo-password")
        # Acknowledge one alert the way a technician does, so the list shows both kinds.
        driver.execute_script(
            "document.querySelector(`li[data-id='${arguments[0]}'] button.ack`).click()",
            ids["backlog"],
        )
        wait_for(
            lambda: driver.execute_script(
                "return !!document.querySelector(`li[data-id='${arguments[0]}'].is-acked`)",
                ids["backlog"],
            ),
            10,
            what="the acknowledged alert",
        )
        shoot(driver, OUT / "dashboard-zh.png", 1920)
        driver.get(console.url + "/?lang=en")
        wait_for(lambda: driver.execute_script("return window.careterm.updates > 0"), 10)
        shoot(driver, OUT / "dashboard-en.png", 1920)
        driver.get(console.url + "/wall?lang=zh")
        wait_for(lambda: driver.execute_script("return window.careterm.updates > 0"), 10)
        shoot(driver, OUT / "dashboard-wall.png", 1920, 1080)
    finally:
        driver.quit()
        console.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
