"""The public page in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium):
figures, live updates while the real pipeline counts, the form, a chat's race link, revocation.

The server runs in the test's event loop (so the test can turn the wheel); every browser call runs in a thread so
the loop keeps serving while the browser waits. One browser for the whole module.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import app
from bot import config as config_module
from bot.core.commands import CommandContext
from sensors.csc import encode_csc_measurement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_SECONDS = 30  # how long to wait for something to appear; not a speed budget (see benchmarks)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = "Debian's chromium and chromium-driver are needed (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The browser, called from the event loop without blocking it."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def open(self, url: str) -> None:
        await self.call(self.driver.get, url)

    async def wait_for(self, condition: Callable[[Any], Any]) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return await self.call(WebDriverWait(self.driver, WAIT_SECONDS).until, condition)

    async def figure(self, name: str, metric: str) -> tuple[str, float | None]:
        def read() -> tuple[str, float | None]:
            from selenium.webdriver.common.by import By

            element = self.driver.find_element(
                By.CSS_SELECTOR, f'[data-hamster="{name}"][data-metric="{metric}"]'
            )
            metres = element.get_attribute("data-metres")
            return element.text, None if metres is None else float(metres)

        return await self.call(read)

    async def text(self) -> str:
        from selenium.webdriver.common.by import By

        return await self.call(lambda: self.driver.find_element(By.TAG_NAME, "body").text)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[app.Runtime]:
    config = config_module.parse(
        {
            "bot": {"database": str(tmp_path / "web.db"), "timezone": "UTC", "units": "km"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
            "web": {"listen": "127.0.0.1:0"},
        }
    )
    running = await app.open_runtime(config)
    try:
        await running.pipelines["Ursula"].claim("test")  # the test's Wheel counts it
        yield running
    finally:
        await running.close()


class Wheel:
    def __init__(self, runtime: app.Runtime) -> None:
        self.pipeline = runtime.pipelines["Ursula"]
        self.counter = 5000
        self.at = time.time() - 3600
        self.pipeline.feed(encode_csc_measurement(self.counter, 0), self.at)

    def turn(self, revolutions: int) -> None:
        self.counter += revolutions
        self.at = min(self.at + revolutions, time.time())
        self.pipeline.feed(encode_csc_measurement(self.counter, 0), self.at)


def ctx(admin: bool = True) -> CommandContext:
    return CommandContext("console", "friends", "alice", "Alice", admin, datetime.now(UTC))


async def test_the_page_shows_figures_and_rises_live(browser: Any, runtime: app.Runtime) -> None:
    assert runtime.config.web is not None
    wheel = Wheel(runtime)
    wheel.turn(400)
    url = await app.start_web(runtime, runtime.config.web)
    page = Page(browser)
    await page.open(url + "/")
    text, metres = await page.figure("Ursula", "tonight")
    circumference = runtime.pipelines["Ursula"].hamster.circumference_m
    assert metres == pytest.approx(400 * circumference, abs=1e-3)
    assert text == "251 m"
    assert "Have you run as much as Ursula?" in await page.text()
    # The 30-night chart is drawn from the JSON as SVG bars.
    bars = await page.wait_for(
        lambda d: d.execute_script(
            "return document.querySelectorAll('.chart-area svg rect').length"
        )
    )
    assert bars == 30
    # Turn the wheel: tonight's figure rises on the open page, no reload.
    await page.wait_for(lambda d: d.execute_script("return document.body.dataset.live === 'on'"))
    marker = await page.call(browser.execute_script, "window.notReloaded = true; return 1")
    assert marker == 1
    wheel.turn(1200)
    await page.wait_for(
        lambda d: (
            d.execute_script("return document.querySelector('[data-metric=tonight]').textContent")
            == "1.01 km"
        )
    )
    _, metres = await page.figure("Ursula", "tonight")
    assert metres == pytest.approx(1600 * circumference, abs=1e-3)
    assert await page.call(browser.execute_script, "return window.notReloaded") is True
    # No console errors (a CSP violation would show up here).
    logs = await page.call(browser.get_log, "browser")
    assert [entry for entry in logs if entry["level"] == "SEVERE"] == []


async def test_the_form_answers(browser: Any, runtime: app.Runtime) -> None:
    assert runtime.config.web is not None
    Wheel(runtime).turn(1000)  # 628 m tonight
    url = await app.start_web(runtime, runtime.config.web)
    page = Page(browser)
    await page.open(url + "/")

    def fill() -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        field = browser.find_element(By.ID, "ask-distance")
        field.clear()
        field.send_keys("1 km")
        Select(browser.find_element(By.ID, "ask-period")).select_by_visible_text("tonight")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    await page.call(fill)
    answer = await page.wait_for(
        lambda d: d.execute_script(
            "const a = document.getElementById('answer'); return a && a.textContent"
        )
    )
    assert answer == "Yes! You ran 1.00 km, 372 m more than Ursula's 628 m tonight."


async def test_a_chats_race_link_live_then_revoked(browser: Any, runtime: app.Runtime) -> None:
    assert runtime.config.web is not None
    url = await app.start_web(runtime, runtime.config.web)
    reply = await runtime.core.dispatch(ctx(), "web", "")
    link = next(word for word in reply.text.split() if "/r/" in word)
    assert link.startswith(url + "/r/"), reply.text
    token = link.rsplit("/", 1)[1]
    page = Page(browser)
    await page.open(link)
    await page.wait_for(lambda d: d.execute_script("return document.body.dataset.live === 'on'"))
    assert "Alice" not in await page.text()
    # A run logged in that chat appears on the open page.
    reply = await runtime.core.dispatch(ctx(), "logrun", "4 km")
    assert "Logged" in reply.text
    row = await page.wait_for(
        lambda d: d.execute_script(
            "const r = document.querySelector('tr[data-name=\"Alice\"]'); return r && r.textContent"
        )
    )
    assert "4.00 km" in row
    # ... and in the race chart: a line for her beside the hamster's.
    names = await page.wait_for(
        lambda d: d.execute_script(
            "const p = [...document.querySelectorAll('[data-race-chart] path')];"
            " return p.length === 2 && p.map((e) => e.dataset.name).sort().join(',')"
        )
    )
    assert names == "Alice,Ursula"
    # Revoked: the open page turns into the not-found page, and the link answers 404.
    assert "off" in (await runtime.core.dispatch(ctx(), "web", "off")).text
    await page.wait_for(lambda d: "Nothing here" in d.find_element("tag name", "h1").text)
    await page.open(f"{url}/api/race/{token}")
    assert "not found" in await page.text()
