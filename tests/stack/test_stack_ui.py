"""Issue 12 §4: the Airflow UI as a person sees it, in a real browser on the session stack.

Debian's Chromium (``make chromium``; never Playwright's own download), headless, driven
by Playwright. Locators are roles, labels and text, as a person finds things; every wait
is generous, for a loaded machine. Screenshots are kept under the stack's artifacts dir,
in ``ui/``: one per step, and each test's last view.
"""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from armada_hooks import get_provider_info
from armada_hooks.links.lookout import XCOM_KEY

UI_TIMEOUT_MS = 60_000  # per action or expectation
LOG_LINES = (  # what the job of tests/stack/dags/stack_ui.py writes
    "ui check: container started",
    "ui check: 42 rows written",
    "ui check: done",
)
CONNECTION = get_provider_info()["connection-types"][0]


@pytest.fixture(scope="module")
def browser(stack):
    executable = shutil.which("chromium")
    assert executable, "tests/stack/test_stack_ui.py needs Debian's chromium: run `make chromium`"
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(stack):
    folder = stack.artifacts_dir / "ui"
    folder.mkdir(exist_ok=True)
    return folder


def new_context(browser, **options):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **options)
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context


def sign_in(page, password):
    """Fill the simple auth manager's login form (where the UI sends a stranger)."""
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def signed_in(browser, stack):
    """A browser context logged in through the login page, as the admin."""
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{stack.api_url}/")
    sign_in(page, stack.password)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    page.close()
    yield context
    context.close()


@pytest.fixture
def ui_page(signed_in, shots, request):
    page = signed_in.new_page()
    yield page
    page.screenshot(path=shots / f"{request.node.name}-last.png")
    page.close()


def test_the_login_page_refuses_a_wrong_password_and_signs_in_with_the_generated_one(
    browser, stack, shots
):
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{stack.api_url}/dags")
        expect(page).to_have_url(re.compile(r"/auth/login"))
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()  # rendered
        page.screenshot(path=shots / "01-login.png")

        sign_in(page, "admin")  # the configured user's name, not its password
        expect(page.get_by_text("Invalid credentials")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/auth/login"))
        page.screenshot(path=shots / "02-login-refused.png")

        sign_in(page, stack.password)
        expect(page).to_have_url(f"{stack.api_url}/dags")
        expect(page.get_by_role("link", name="stack_ui")).to_be_visible()
        assert "_token" in {cookie["name"] for cookie in context.cookies()}
        page.screenshot(path=shots / "03-dags.png")
    finally:
        context.close()


def test_add_connection_offers_the_armada_type_with_the_labels_we_declare(ui_page, stack, shots):
    page = ui_page
    page.set_viewport_size({"width": 1200, "height": 2000})  # the whole dialog in one shot
    page.goto(f"{stack.api_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    connection_type = dialog.get_by_role("combobox", name="Connection Type")
    connection_type.fill("Armada")
    page.get_by_role("option", name=CONNECTION["hook-name"], exact=True).click()

    behaviour = CONNECTION["ui-field-behaviour"]
    token = dialog.get_by_label(behaviour["relabeling"]["password"], exact=True)
    expect(token).to_have_attribute("type", "password")
    host = dialog.get_by_label("Host", exact=True)
    expect(host).to_have_attribute("placeholder", behaviour["placeholders"]["host"])
    for hidden in ("schema", "login"):
        expect(dialog.locator(f'[name="{hidden}"]'), hidden).to_have_count(0)
    dialog.screenshot(path=shots / "04-add-connection-standard-fields.png")
    dialog.get_by_role("button", name="Standard Fields").click()  # folded: one shot each
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for name, field in CONNECTION["conn-fields"].items():
        # Airflow's text inputs are not tied to their <label>: find the field by its text
        label = page.get_by_text(field["label"], exact=True)
        group = dialog.get_by_role("group").filter(has=label)
        expect(group.get_by_text(field["label"], exact=True), name).to_be_visible()
        expect(group.locator(f'[name="element_{name}"]'), name).to_have_count(1)
        if description := field.get("description"):
            expect(group.get_by_text(description, exact=True), name).to_be_visible()
    key = dialog.locator('[name="element_client_key"]')
    expect(key).to_have_attribute("type", "password")
    # Airflow 3's form shows no placeholder for an extra: the example is in the description
    expect(dialog.get_by_text("e.g. https://lookout.example.com", exact=False)).to_be_visible()
    dialog.screenshot(path=shots / "05-add-connection-extra-fields.png")


@pytest.mark.timeout(420)  # run_dag's own 300 s limit reports the task states first
def test_a_task_that_submitted_a_job_links_to_lookout_and_shows_the_container_log(
    ui_page, stack, run_dag, shots
):
    run = run_dag("stack_ui", timing="UI: the run the browser shows")
    assert run.state == "success"
    (job,) = run.jobs()
    assert stack.rest.xcom("stack_ui", run.run_id, "logs_to_ui", key=XCOM_KEY)["job_id"] == (
        job.job_id
    )
    lookout_url = json.loads(stack.connection_json())["extra"]["lookout_url"]
    page = ui_page
    task_url = f"{stack.api_url}/dags/stack_ui/runs/{quote(run.run_id, safe='')}/tasks/logs_to_ui"

    page.goto(f"{task_url}/details")
    link = page.get_by_role("link", name="Lookout", exact=True)
    href = f"{lookout_url}/jobs/{job.job_id}"
    expect(link).to_have_attribute("href", href)
    page.screenshot(path=shots / "06-task-details.png")

    page.get_by_role("link", name="Logs", exact=True).click()
    for line in LOG_LINES:
        expect(page.get_by_text(line)).to_be_visible()
    expect(page.get_by_text(f"Armada job {job.job_id} is SUCCEEDED")).to_be_visible()
    page.screenshot(path=shots / "07-task-log.png")
    run.ledger().assert_clean()
