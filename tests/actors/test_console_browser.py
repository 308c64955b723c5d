"""The web console in a real browser (Debian's chromium, driven by selenium through
chromedriver) against a real daemon: login and logout, a wrong key, the history, a job's
page with every stage, a live ask whose replies appear before the final answer, a
cancelled ask, hostile model output that stays inert text, and the pages with
JavaScript off. Under CI a missing browser fails these tests; elsewhere it skips them.

``CONSOLE_SCREENSHOT=1`` makes the job page's test save ``docs/console-job.png``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helpers import ROOT, rpc
from helpers import WAIT, fake_models
from test_http import KEY, start

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",  # without these, this closed network refuses it
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1400",
)
HOSTILE = (
    "Look: <script>window.pwned = 1</script> and "
    '<img src="x" onerror="window.pwned = 2"> and '
    "[click me](javascript:window.pwned=3) and "
    '<a href="javascript:window.pwned=4" onclick="window.pwned=5">a raw link</a> '
    '<svg onload="window.pwned=6"></svg>'
)


def _browser(javascript: bool = True) -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        message = (
            f"the browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt: chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="od-chromium-", dir="/tmp")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from _browser()


@pytest.fixture(scope="module")
def browser_without_js() -> Iterator[Any]:
    yield from _browser(javascript=False)


def wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def present(selector: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return ec.presence_of_element_located((By.CSS_SELECTOR, selector))


def log_in(driver: Any, d: Any, key: str = KEY) -> None:
    driver.delete_all_cookies()
    driver.get(f"{d.url}/")
    wait(driver, present("#key"))
    assert "/login" in driver.current_url
    css(driver, "#key").send_keys(key)
    css(driver, "form.stack button[type=submit]").click()


def ask_from_the_page(driver: Any, d: Any, prompt: str) -> str:
    driver.get(f"{d.url}/")
    css(driver, "#prompt").send_keys(prompt)
    css(driver, "#ask-submit").click()
    wait(driver, present("#job-status"))
    return str(driver.current_url.rsplit("/", 1)[1])


def no_alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018  # the property raises without an alert
    except NoAlertPresentException:
        return True
    return False


# --- tests --------------------------------------------------------------------------


def test_login_and_logout(daemon, browser) -> None:
    d = start(daemon)
    log_in(browser, d)
    wait(browser, present("nav a[href='/jobs']"))
    assert browser.current_url == f"{d.url}/"
    cookie = browser.get_cookie("orchestrord_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["expiry"]
    css(browser, "form.logout button").click()
    wait(browser, present("#key"))
    browser.get(f"{d.url}/jobs")
    wait(browser, present("#key"))  # logged out: back to the login
    assert browser.get_cookie("orchestrord_session") is None


def test_a_wrong_key_is_refused(daemon, browser) -> None:
    d = start(daemon)
    log_in(browser, d, key="not-the-key")
    error = wait(browser, present("#login-error"))
    assert error.text == "That is not the key."
    assert browser.get_cookie("orchestrord_session") is None


def test_the_history_lists_and_filters_runs(daemon, browser) -> None:
    d = start(daemon)
    for prompt in ("Capital of Peru?", "Capital of Chad?", "Tallest mountain?"):
        rpc(d, "ask", {"prompt": prompt, "metadata": {"topic": "geo"}})
    log_in(browser, d)
    wait(browser, present("nav a[href='/jobs']")).click()
    wait(browser, present("table.runs"))
    assert len(all_css(browser, "table.runs tbody tr")) == 3
    css(browser, "#f-text").send_keys("Capital")
    css(browser, "form.filters button").click()
    wait(browser, lambda b: len(all_css(b, "table.runs tbody tr")) == 2)
    assert "text=Capital" in browser.current_url
    all_css(browser, "table.runs tbody a")[0].click()
    wait(browser, present("#stages"))
    assert "Capital of Chad?" in css(browser, "#prompt-text").text


def test_a_jobs_page_shows_every_stage(daemon, browser) -> None:
    models = fake_models(
        ("gpt", "gemini", "llama"),
        reply="**Lima** is the capital.",
        latency_ms=30,
        price_in_per_mtok=0.15,
        price_out_per_mtok=0.6,
    )
    d = start(daemon, models=models)
    job = rpc(d, "ask", {"prompt": "What is the capital of Peru?"})["result"]
    log_in(browser, d)
    wait(browser, present("nav"))
    browser.get(f"{d.url}/jobs/{job['job_id']}")
    wait(browser, present("#stages"))
    rounds = [h.text for h in all_css(browser, "#stages .round h3")]
    assert rounds == ["1. initial", "2. meta", "3. synthesis"]
    assert len(all_css(browser, "#stages .reply")) == 7
    assert css(browser, "#final-answer strong").text == "Lima"  # Markdown, sanitised
    assert "Agreement map" in css(browser, "#agreement").text
    assert css(browser, "#share").get_attribute("value") == browser.current_url
    if os.environ.get("CONSOLE_SCREENSHOT") == "1":
        browser.save_screenshot(str(ROOT / "docs" / "console-job.png"))


def test_a_live_ask_shows_each_models_reply_before_the_final_answer(daemon, browser) -> None:
    models = [
        {"name": "fast", "provider": "fake", "reply": "fast thinks four", "latency_ms": 100},
        {"name": "slow", "provider": "fake", "reply": "slow thinks four", "latency_ms": 400},
    ]
    d = start(daemon, models=models, pipeline={"synthesizer": "fast"})
    log_in(browser, d)
    wait(browser, present("#prompt"))
    ask_from_the_page(browser, d, "What is 2 + 2?")
    wait(browser, present("#live[data-done]"))
    assert css(browser, "#live").get_attribute("data-done") == "ok"
    initial = all_css(browser, "#live-round-0 .reply")
    assert sorted(c.get_attribute("data-model") for c in initial) == ["fast", "slow"]
    final = css(browser, "#live-final")
    first_delta = int(final.get_attribute("data-first-seq"))
    for card in all_css(browser, "#live-rounds .reply"):
        if card.get_attribute("data-model") in ("fast", "slow") and "live-round-2" not in (
            card.find_element("xpath", "./ancestor::section[1]").get_attribute("id")
        ):
            assert int(card.get_attribute("data-seq")) < first_delta
    assert len(all_css(browser, "#live-round-1 .reply")) == 2  # the critiques
    assert final.text == "fast thinks four"
    assert "Agreement map" in css(browser, "#live-outcome").text


def test_a_cancelled_ask(daemon, browser) -> None:
    d = start(daemon, models=fake_models(("a", "b"), reply="never", latency_ms=15_000))
    log_in(browser, d)
    wait(browser, present("#prompt"))
    job_id = ask_from_the_page(browser, d, "Take all the time you need")
    wait(browser, present("#live-round-0"))  # the stage has started
    css(browser, "#cancel").click()
    wait(browser, present("#live[data-done]"))
    assert css(browser, "#live").get_attribute("data-done") == "cancelled"
    assert css(browser, "#job-status").text == "cancelled"
    assert rpc(d, "job", {"job_id": job_id})["result"]["status"] == "cancelled"


def test_hostile_model_output_stays_inert_text(daemon, browser) -> None:
    d = start(daemon, models=fake_models(("a", "b"), reply=HOSTILE))
    log_in(browser, d)
    wait(browser, present("#prompt"))
    job_id = ask_from_the_page(browser, d, "Say something dangerous")
    wait(browser, present("#live[data-done]"))
    assert "<script>window.pwned = 1</script>" in css(browser, "#live-final").text
    assert browser.execute_script("return window.pwned") is None
    assert no_alert(browser)
    browser.get(f"{d.url}/jobs/{job_id}")  # the full record: sanitised Markdown
    wait(browser, present("#stages"))
    for link in all_css(browser, "main a"):
        href = link.get_attribute("href") or ""
        assert not href.lower().startswith("javascript"), href
        if "raw link" in link.text or "click me" in link.text:
            link.click()
    assert not all_css(browser, "main script, main img, main svg:not(.chart), main iframe")
    assert not browser.execute_script(
        "return [...document.querySelectorAll('main *')].some("
        "e => [...e.attributes].some(a => a.name.startsWith('on')))"
    )
    assert "<script>window.pwned = 1</script>" in css(browser, "#final-answer").text
    assert browser.execute_script("return window.pwned") is None
    assert no_alert(browser)


def test_everything_but_the_live_view_works_without_javascript(daemon, browser_without_js) -> None:
    driver = browser_without_js
    d = start(daemon, models=fake_models(("a", "b"), reply="Quito", latency_ms=50))
    log_in(driver, d)
    wait(driver, present("#prompt"))
    ask_from_the_page(driver, d, "Capital of Ecuador?")
    # the job's page refreshes itself (a <noscript> refresh) until the job is done
    wait(driver, lambda b: css(b, "#job-status").text == "ok")
    assert css(driver, "#final-answer").text == "Quito"
    driver.get(f"{d.url}/jobs?text=Ecuador")
    assert len(all_css(driver, "table.runs tbody tr")) == 1
    css(driver, "form.logout button").click()
    wait(driver, present("#key"))
