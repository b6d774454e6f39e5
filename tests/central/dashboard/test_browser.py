"""The console in a real browser (headless Chromium + Selenium): log in, watch a real device go
through mosquitto and the real collector, see its alert arrive and it go offline without a
reload, acknowledge the alert; the wall display; log-out and languages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from central.db import alert_acks, open_db
from terminal.config import load_config
from terminal.mqtt_link import LinkOptions
from terminal.uplink import Uplink
from tests.central.dashboard.browser import log_in
from tests.central.dashboard.conftest import PASSWORD
from tests.central.dashboard.site_data import Device, rating, store_envelopes, store_status
from tests.conftest import wait_for, write_config

pytestmark = [pytest.mark.browser]


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def has(driver, css: str) -> bool:
    return bool(js(driver, "return !!document.querySelector(arguments[0])", css))


def text(driver, css: str) -> str:
    return js(
        driver, "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )


def device(tmp_path: Path, broker_url: str, device_id: str = "pad-w03") -> Uplink:
    d = tmp_path / device_id
    d.mkdir()
    cfg = load_config(
        write_config(
            d / "device.toml", device_id=device_id, data_dir=d / "data", broker_url=broker_url
        )
    )
    return Uplink(
        cfg, options=LinkOptions(backoff_min_s=0.2, backoff_max_s=0.5, telemetry_interval_s=1)
    )


@pytest.mark.broker
@pytest.mark.slow
def test_device_alert_and_offline_arrive_live_and_the_alert_is_acknowledged(
    db_url, tmp_path: Path, broker, collector_factory, console_factory, browser
) -> None:
    collector = collector_factory(broker.url, db_url, "--client-id", "col-console").start()
    wait_for(lambda: "subscribed" in collector.output(), 20, what="collector subscribed")
    up = device(tmp_path, broker.url)
    up.start()
    try:
        console = console_factory(db_url)
        log_in(browser, console.url, "wang", PASSWORD)
        row = "tr[data-device='pad-w03']"
        wait_for(lambda: has(browser, row + "[data-state='online']"), 20, what="pad online")
        # Telemetry (every second here) reaches the table through the collector.
        wait_for(
            lambda: "已同步" in text(browser, row) or "未同步" in text(browser, row),
            20,
            what="telemetry",
        )
        loaded = js(browser, "return window.careterm.loadedAt")
        updates = js(browser, "return window.careterm.updates")

        up.record("rating", rating("W03", "E1024", 1, None))
        ev = up.alert(
            "dissatisfied",
            "warning",
            "收费处 3号窗口: 不满意",
            window="W03",
            staff="E1024",
            score=1,
            scale=4,
            label="不满意",
            reason=None,
        )
        alert = f"li.alert[data-id='{ev.id}']"
        wait_for(lambda: has(browser, alert + ".is-open"), 20, what="the alert on the page")
        assert "不满意评价" in text(browser, alert) and "W03" in text(browser, alert)
        assert text(browser, "#tile-alerts .value").strip() == "1"

        up.stop(5)  # a clean stop: offline / shutdown
        wait_for(lambda: has(browser, row + "[data-state='offline']"), 20, what="pad offline")
        assert "离线" in text(browser, row) and "正常关机" in text(browser, row)
        assert "1 台离线" in text(browser, "#tile-devices")

        browser.find_element(By.CSS_SELECTOR, alert + " button.ack").click()
        wait_for(lambda: has(browser, alert + ".is-acked"), 15, what="acknowledged on the page")
        assert "wang" in text(browser, alert)
        assert text(browser, "#tile-alerts .value").strip() == "0"
        # No reload at any point: the same page got every change through its stream.
        assert js(browser, "return window.careterm.loadedAt") == loaded
        assert js(browser, "return window.careterm.updates") > updates
        engine = open_db(db_url)
        with engine.connect() as c:
            acks = c.execute(select(alert_acks.c.event_id, alert_acks.c.acked_by)).all()
        engine.dispose()
        assert acks == [(ev.id, "wang")]
    finally:
        up.stop(2)


def test_wall_display_is_large_has_no_controls_and_updates_live(
    db_url, tmp_path: Path, console_factory, browser
) -> None:
    engine = open_db(db_url)
    store_status(engine, "pad-w01", "online", 1, time.time() - 600)
    console = console_factory(db_url)
    log_in(browser, console.url, "wang", PASSWORD, path="/wall")
    assert browser.current_url.endswith("/wall")
    assert (
        js(browser, "return document.querySelectorAll('main button, main form, main a').length")
        == 0
    )
    assert "今日还没有评价" in text(browser, "#w-windows")
    loaded = js(browser, "return window.careterm.loadedAt")
    pad = Device("pad-w01")
    for score in (4, 4, 4, 1):
        pad.event("rating", rating("W01", "E1001", score, None), time.time())
    store_envelopes(engine, pad.envelopes)
    wait_for(lambda: "75.0%" in text(browser, "#w-windows"), 15, what="the window's figure")
    assert "W01" in text(browser, "#w-windows")
    size = js(
        browser, "return parseFloat(getComputedStyle(document.querySelector('.wc-pct')).fontSize)"
    )
    assert size >= 40  # readable across a service centre
    assert js(browser, "return window.careterm.loadedAt") == loaded
    engine.dispose()


def test_log_in_errors_language_and_log_out(tmp_path: Path, console_factory, browser) -> None:
    console = console_factory(f"sqlite:///{tmp_path}/s.db")
    browser.get(console.url + "/wall")
    assert "/login" in browser.current_url and "登录" in browser.title
    browser.find_element(By.ID, "user").send_keys("wang")
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "login-button").click()
    wait_for(lambda: has(browser, "#login-error"), 10, what="the error")
    assert "用户名或密码不正确" in text(browser, "#login-error")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait_for(lambda: browser.current_url.endswith("/wall"), 10, what="back to the wall")
    browser.get(console.url + "/")
    browser.find_element(By.ID, "to-lang").click()
    wait_for(lambda: "Terminal console" in text(browser, ".bar"), 10, what="English")
    browser.get(console.url + "/")  # the choice stays with the session
    assert "Log out" in text(browser, ".bar")
    browser.find_element(By.ID, "logout").click()
    wait_for(lambda: "/login" in browser.current_url, 10, what="logged out")
    browser.get(console.url + "/api/state")
    assert "login required" in browser.page_source
