"""Headless Chromium from Debian (`chromium`, `chromium-driver`) driven by Selenium, and the
console as a real `careterm site dashboard` process."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from central.db import open_db
from tests.conftest import careterm_cmd, careterm_env, free_port, wait_for

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--lang=zh-CN",
)


class BrowserUnavailable(RuntimeError):
    """Chromium or its driver is missing or cannot start here."""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def start_browser(width: int = 1600, height: int = 1000):
    """A fresh headless Chromium with its own profile directory (removed at `quit`)."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ModuleNotFoundError as e:  # the dev extra brings selenium
        raise BrowserUnavailable(f"selenium is not installed ({e})") from None
    exe = chromium_path()
    if exe is None or not Path(CHROMEDRIVER).exists():
        raise BrowserUnavailable(
            "Debian's chromium and chromium-driver are not installed (scripts/bootstrap)"
        )
    profile = tempfile.mkdtemp(prefix="careterm-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except WebDriverException as e:
        shutil.rmtree(profile, ignore_errors=True)
        raise BrowserUnavailable(f"chromium did not start: {e.msg}") from None
    real_quit = driver.quit

    def quit_and_clean() -> None:
        try:
            real_quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


def add_user(users: Path, name: str, password: str) -> None:
    subprocess.run(
        careterm_cmd("site", "users", "add", name, "--users", str(users)),
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
        env=careterm_env(),
    )


class Console:
    """`careterm site dashboard` as a child process on a free port."""

    def __init__(
        self, workdir: Path, db_url: str, *extra: str, https: tuple[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.users = workdir / "users.txt"
        self.log = workdir / f"dashboard-{self.port}.log"
        self.args = [
            "site",
            "dashboard",
            "--db",
            db_url,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--users",
            str(self.users),
            "--refresh",
            "0.3",
            *extra,
        ]
        if https:
            self.args += ["--cert", https[0], "--key", https[1]]
        self.scheme = "https" if https else "http"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Console:
        open_db(self.args[3]).dispose()  # the site database, as `site collect` makes it
        f = self.log.open("ab")
        self.proc = subprocess.Popen(
            careterm_cmd("-v", *self.args), stdout=f, stderr=f, env=careterm_env()
        )
        f.close()
        wait_for(self._up, 30, 0.1, what=f"the console on port {self.port}")
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the console exited: {self.output()}")
        return "Application startup complete" in self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def log_in(driver, base: str, name: str, password: str, path: str = "/") -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + path)
    wait_for(lambda: "/login" in driver.current_url, 10, what="the log-in page")
    driver.find_element(By.ID, "user").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    wait_for(lambda: "/login" not in driver.current_url, 15, what="logged in")
    wait_for(
        lambda: driver.execute_script("return window.careterm && window.careterm.updates > 0"),
        15,
        what="the first live update",
    )


def settle(seconds: float = 0.3) -> None:
    time.sleep(seconds)
