"""The dashboard in a real browser: Debian's headless chromium driven by Selenium, against
the real worker, sink and gateway. Sign in, the overview from real events, approving an
offer from the queue (and a refused move shown as a message), a rule with a mistake
shown beside the field and the rules' versions, a catalog offer, an integration created
and edited (its mistake shown beside the field), creating and revoking a key, and a
second tenant that sees none of the first's data. Screenshots of each page go to
test-artifacts/dashboard/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from support import wait_for
from test_offers import client, sign_up

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
WAIT_SECONDS = 20


def _missing_browser() -> str | None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return None
    return "needs Debian's chromium and chromium-driver (.ci/run installs them)"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = _missing_browser()
    if missing:
        if os.environ.get("PROFFER_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, condition, what: str):  # type: ignore[no-untyped-def]
    return WebDriverWait(
        driver, WAIT_SECONDS, ignored_exceptions=[StaleElementReferenceException]
    ).until(condition, message=f"waiting for {what}")


def text_of(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def shows(css: str, text: str):  # type: ignore[no-untyped-def]
    """A condition: the element ``css`` exists and shows ``text``."""

    def found(driver: WebDriver) -> WebElement | bool:
        elements = driver.find_elements(By.CSS_SELECTOR, css)
        return next((e for e in elements if text in e.text), False)

    return found


def go(driver: WebDriver, base: str, path: str, ready_css: str = "main h1") -> None:
    driver.get(base + path)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ready_css), f"{path} to load")


def click(driver: WebDriver, css: str) -> None:
    driver.find_element(By.CSS_SELECTOR, css).click()


def screenshot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def sign_in(driver: WebDriver, base: str, key: str) -> None:
    go(driver, base, "/dashboard", "#api_key")  # redirected to the sign-in form
    driver.find_element(By.ID, "api_key").send_keys(key)
    click(driver, "form[action='/dashboard/sign-in'] button")
    wait(driver, shows("main h1", "Overview"), "the overview after signing in")


async def pricing_visits(api: httpx.AsyncClient, customer: str) -> None:
    views = [{"type": "page_view", "data": {"page": "/pricing"}} for _ in range(2)]
    answer = await api.post(
        "/api/webhook/events",
        json={"customer": {"id": customer, "email": f"{customer}@example.com"}, "events": views},
    )
    assert answer.status_code == 200, answer.text


async def offers_of(api: httpx.AsyncClient) -> list[dict]:
    return (await api.get("/api/offers")).json()["offers"]


async def test_the_dashboard_in_a_browser(settings, processes, browser):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    base = f"http://127.0.0.1:{settings.gateway_port}"
    key, other_key = await sign_up(settings, "Ops"), await sign_up(settings, "Other shop")
    async with client(settings, key) as api, client(settings, other_key) as other:
        for customer in ("ann", "bob", "cid"):
            await pricing_visits(api, customer)
        made = await wait_for(lambda: offers_of(api), lambda o: len(o) == 3, what="3 offers")

        # Sign in; the overview counts the offers the rule made from the events.
        sign_in(browser, base, key)
        wait(browser, shows("#offers-total", "3"), "3 offers on the overview")
        assert "pricing-interest" in text_of(browser, "#per-rule")
        assert browser.execute_script("return document.querySelectorAll('canvas').length") == 5
        screenshot(browser, "overview")

        # The queue: approve ann's offer with its own button; the page and the API agree.
        ann = next(o for o in made if o["external_customer_id"] == "ann")
        go(browser, base, "/dashboard/queue", f"#offer-{ann['id']}")
        screenshot(browser, "queue")
        click(browser, f"#offer-{ann['id']} button[data-action='approved']")
        wait(browser, shows("#outcomes", f"Offer {ann['id']} is now approved"), "the approval")
        assert not browser.find_elements(By.ID, f"offer-{ann['id']}")  # left the queue
        read = (await api.get(f"/api/offers/{ann['id']}")).json()["offer"]
        assert read["status"] == "approved"
        go(browser, base, "/dashboard/queue?status=approved", f"#offer-{ann['id']}")
        assert text_of(browser, f"#offer-{ann['id']} [data-role='status']") == "approved"

        # A move the state machine refuses reads as a message, not a broken page: send
        # two generated offers at once (ticked), then expire them.
        go(browser, base, "/dashboard/queue", "#queue-form")
        for box in browser.find_elements(By.CSS_SELECTOR, "input[name='ids']"):
            box.click()
        click(browser, ".bulk button[value='sent']")
        wait(browser, shows("#outcomes", "was not moved"), "the refusal")
        assert "it may move to approved or expired" in text_of(browser, "#outcomes")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#outcomes li.error")) == 2

        # The live feed shows a new offer as it is made.
        await pricing_visits(api, "dan")
        wait(browser, shows("#feed", "dan"), "the new offer in the live feed")
        screenshot(browser, "queue-feed")
        # ... and the overview's live rates count dan's events and offer.
        go(browser, base, "/dashboard", "#events-rate")
        wait(
            browser,
            lambda d: text_of(d, "#events-rate") != "0.0" and text_of(d, "#offers-rate") != "0.0",
            "live rates",
        )

        # Customers: one by external id, with signals, events, offers and decisions.
        go(browser, base, "/dashboard/customers?q=ann", "#customer")
        assert "/pricing" in text_of(browser, "#customer")
        assert "approved" in browser.find_element(By.TAG_NAME, "main").text
        screenshot(browser, "customers")

        # Rules: a mistake is shown beside the field it names; nothing changes.
        go(browser, base, "/dashboard/rules", "#rules-document")
        editor = browser.find_element(By.ID, "rules-document")
        editor.clear()
        editor.send_keys('{"rules": [{"id": "vip", "name": "VIP", "priority": "high"}]}')
        click(browser, "#rules-form button[type='submit']")
        errors = wait(browser, shows("#rules-document-errors", "priority"), "the rule's error")
        assert "body.rules[0].priority" in errors.text and 'rule "vip"' in errors.text
        beside = browser.execute_script(
            "const a = document.getElementById('rules-document').getBoundingClientRect();"
            "const b = document.getElementById('rules-document-errors').getBoundingClientRect();"
            "return b.left >= a.right && b.top < a.bottom;"
        )
        assert beside, "the errors are not beside the editor"
        screenshot(browser, "rules")
        assert (await api.get("/api/rules")).json()["version"] == 0
        # Corrected, it is saved through the rules' owner: version 1, by this key.
        editor = browser.find_element(By.ID, "rules-document")
        editor.clear()
        editor.send_keys(
            '{"rules": [{"id": "vip", "name": "VIP", "priority": 5,'
            ' "conditions": {"min_purchase_count": 3}}]}'
        )
        click(browser, "#rules-form button[type='submit']")
        wait(browser, shows("#notice", "Saved: rules version 1"), "the saved rules")
        assert "by key “Ops”" in text_of(browser, "main")
        assert [r["id"] for r in (await api.get("/api/rules")).json()["rules"]] == ["vip"]
        # The rules' versions: the new one, by this key, with what it changed.
        version = text_of(browser, "#rules-version-1")
        assert "Ops" in version and "added vip" in version and "removed pricing-interest" in version
        click(browser, "#rules-version-1 summary")
        assert '"min_purchase_count": 3' in text_of(browser, "#rules-version-1 pre")
        screenshot(browser, "rules-versions")

        # Catalog: create an offer from the editor's template; it is listed with its stock.
        go(browser, base, "/dashboard/catalog", "#offer-document")
        click(browser, "#catalog-offer-form button[type='submit']")
        wait(browser, shows("#notice", "Saved the offer"), "the catalog offer")
        assert "100 of 100 left" in text_of(browser, "#catalog-offers")
        click(browser, "#catalog-offers button[value='publish']")
        wait(browser, shows("#notice", "publish done"), "the published offer")
        assert "published" in text_of(browser, "#catalog-offers")
        listed = (await api.get("/api/catalog/offers")).json()["offers"]
        assert [o["status"] for o in listed] == ["published"]
        screenshot(browser, "catalog")

        # Integrations: create one from the editor's template; it is listed with its sites
        # and placements, and the API has it.
        go(browser, base, "/dashboard/integrations", "#integration-document")
        click(browser, "#integration-form button[type='submit']")
        wait(browser, shows("#notice", "Created the integration"), "the new integration")
        [integration] = (await api.get("/api/integrations")).json()["integrations"]
        row = f"#integration-{integration['id']}"
        assert "Web shop" in text_of(browser, row) and "shop.example" in text_of(browser, row)
        assert "order_confirmation: every catalog offer" in text_of(browser, row)
        # Edited with a mistake: the error is shown beside the field it names.
        click(browser, f"{row} a")
        wait(browser, shows("main h2", f"Edit integration #{integration['id']}"), "the editor")
        editor = browser.find_element(By.ID, "integration-document")
        editor.clear()
        editor.send_keys('{"name": "Web shop", "blocked_sites": ["not a host!"]}')
        click(browser, "#integration-form button[type='submit']")
        errors = wait(
            browser, shows("#integration-document-errors", "blocked_sites"), "the site's error"
        )
        assert "body.blocked_sites[0]" in errors.text
        beside = browser.execute_script(
            "const a = document.getElementById('integration-document').getBoundingClientRect();"
            "const b = document.getElementById('integration-document-errors')"
            ".getBoundingClientRect(); return b.left >= a.right && b.top < a.bottom;"
        )
        assert beside, "the errors are not beside the editor"
        screenshot(browser, "integrations-error")
        # Corrected, it is saved: version 2, the site blocked.
        editor = browser.find_element(By.ID, "integration-document")
        editor.clear()
        editor.send_keys('{"name": "Web shop", "blocked_sites": ["bad.example"]}')
        click(browser, "#integration-form button[type='submit']")
        wait(browser, shows("#notice", f"Saved integration {integration['id']}"), "the edit")
        assert "bad.example" in text_of(browser, f"{row} [data-role='blocked']")
        read = (await api.get(f"/api/integrations/{integration['id']}")).json()["integration"]
        assert (read["version"], read["blocked_sites"]) == (2, ["bad.example"])
        screenshot(browser, "integrations")

        # Setup: create a key (shown once), then revoke it; the API refuses it within a
        # second (the gateway caches a key's owner that long).
        go(browser, base, "/dashboard/setup", "#key-name")
        browser.find_element(By.ID, "key-name").send_keys("Browser key")
        click(browser, "#new-key-form button")
        new_key = wait(browser, lambda d: d.find_elements(By.ID, "new-key-value"), "the new key")[
            0
        ].text
        assert new_key.startswith("pk_") and new_key in text_of(browser, "pre")
        async with client(settings, new_key) as fresh:
            assert (await fresh.get("/api/offers")).status_code == 200
            row = browser.find_element(By.XPATH, "//tr[th[text()='Browser key']]")
            row.find_element(By.CSS_SELECTOR, "button").click()
            browser.switch_to.alert.accept()
            wait(browser, shows("#notice", "Revoked key"), "the revocation")
            await wait_for(
                lambda: fresh.get("/api/offers"),
                lambda answer: answer.status_code == 401,
                timeout=1.5,
                interval=0.1,
                what="the revoked key refused",
            )
        screenshot(browser, "setup")

        # Phone width: the queue still reads.
        browser.set_window_size(390, 844)
        go(browser, base, "/dashboard/queue", "#queue-form")
        screenshot(browser, "queue-phone")
        browser.set_window_size(1280, 1000)

        # Sign out; a second tenant sees none of the first's data.
        click(browser, ".sign-out button")
        wait(browser, lambda d: d.find_elements(By.ID, "api_key"), "the sign-in form")
        sign_in(browser, base, other_key)
        assert text_of(browser, "#offers-total") == "0"
        assert browser.find_elements(By.ID, "empty-state")
        go(browser, base, "/dashboard/queue", "#queue-form")
        assert not browser.find_elements(By.CSS_SELECTOR, "article.offer")
        go(browser, base, "/dashboard/customers?q=ann", "main h1")
        assert not browser.find_elements(By.ID, "customer")
        go(browser, base, "/dashboard/catalog", "#offer-document")
        assert not browser.find_elements(By.ID, "catalog-offers")
        go(browser, base, "/dashboard/integrations", "#integration-document")
        assert not browser.find_elements(By.ID, "integrations")
        assert browser.find_elements(By.ID, "no-integrations")
        go(browser, base, f"/dashboard/integrations?edit={integration['id']}", "main h1")
        assert "Edit integration" not in text_of(browser, "main")  # not theirs to edit
        assert not browser.find_elements(By.ID, f"integration-{integration['id']}")
        go(browser, base, "/dashboard/rules", "#rules-document")
        assert browser.find_elements(By.ID, "rules-no-versions")
        assert not browser.find_elements(By.ID, "rules-version-1")
        go(browser, base, "/dashboard/setup", "#keys")
        assert "Ops" not in text_of(browser, "#keys")
        screenshot(browser, "second-tenant")
        assert (await other.get("/api/offers")).json()["offers"] == []
