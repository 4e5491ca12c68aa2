"""The dashboard page in a real headless Chromium (Debian's package, driven by Playwright): an operator signs
in, sees a queue's depth rise while it is paused, reads a failed job's traceback, and retries it; a page just
opened charts the depth and latency the workers sampled.

`make test` installs Chromium with apt-get where it can; without it (or without Playwright) these tests
are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from playwright import sync_api

from tests.ops_world import SAMPLE_EVERY_S, OpsWorld, sampling_stack
from tests.stack import wait_for

CHROMIUM = os.environ.get("SECTOR_TEST_CHROMIUM", "/usr/bin/chromium")

if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
    pytest.skip(f"No Chromium at {CHROMIUM}: `apt-get install chromium` (make test does it where it may), or set "
                "SECTOR_TEST_CHROMIUM to a Chromium binary.", allow_module_level=True)


@pytest.fixture(scope="module")
def stack():
    stack = sampling_stack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def world(stack) -> OpsWorld:
    return OpsWorld(stack)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, world):
    context = browser.new_context(base_url=world.origin)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page, email: str, password: str) -> None:
    page.goto("/ops/")
    page.locator("#sign-in-form input[name=email]").fill(email)
    page.locator("#sign-in-form input[name=password]").fill(password)
    page.locator("#sign-in-form button[type=submit]").click()


def confirm(page) -> None:
    page.locator("#confirm-ok").click()


def test_a_non_operator_sees_the_sign_in_form_with_an_error(page, world):
    sign_in(page, world.outsider.email, world.outsider.password)
    sync_api.expect(page.locator("#sign-in-error")).to_have_text("This account is not an operator.")
    assert page.locator("#dashboard").is_hidden()


def test_an_operator_sees_depth_rise_while_paused_reads_a_traceback_and_retries(page, world):
    sign_in(page, world.operator.email, world.operator.password)
    email_row = page.locator("#queues tbody tr[data-queue=email]")
    sync_api.expect(email_row).to_be_visible()
    sync_api.expect(page.locator("#workers tbody tr")).to_have_count(2)

    # Pause from the page (it asks first), then jobs pile up and the live table shows it without a reload.
    email_row.locator("button.pause").click()
    confirm(page)
    sync_api.expect(email_row.locator("td.paused")).to_be_visible()
    time.sleep(1.0)  # workers look at the flag every half second
    ids = world.failing_mails(3)
    sync_api.expect(email_row.locator("td.depth")).to_have_text("3")
    time.sleep(2.5)
    sync_api.expect(email_row.locator("td.depth")).to_have_text("3")
    email_row.locator("button.resume").click()
    sync_api.expect(email_row.locator("td.depth")).to_have_text("0")
    for message_id in ids:
        world.dead(message_id)

    # The failed job's traceback.
    failed_row = page.locator(f"#failed tbody tr[data-message-id='{ids[0]}']")
    sync_api.expect(failed_row).to_be_visible()
    sync_api.expect(failed_row.locator("td.exception")).to_contain_text("SealBroken")
    failed_row.locator("button.details").click()
    sync_api.expect(page.locator("#detail-traceback")).to_contain_text("Traceback (most recent call last)")
    sync_api.expect(page.locator("#detail-traceback")).to_contain_text("SealBroken")

    # Retry it (after confirming): the worker runs it again, and the audit log on the page says so.
    failed_row.locator("button.retry").click()
    confirm(page)
    assert wait_for(lambda: world.record(ids[0]).get("attempts") == "2", timeout=20), "the retried job did not run"
    sync_api.expect(page.locator("#audit tbody tr", has_text="retry").first).to_contain_text(world.operator.email)
    sync_api.expect(page.locator("#audit tbody", has_text="pause")).to_be_visible()


def test_cancelling_the_confirmation_does_nothing(page, world):
    (message_id,) = world.dead_mails()
    sign_in(page, world.operator.email, world.operator.password)
    row = page.locator(f"#failed tbody tr[data-message-id='{message_id}']")
    row.locator("button.delete").click()
    page.locator("#confirm-cancel").click()
    time.sleep(1.0)
    assert world.ops.get(f"/failed/{message_id}").status_code == 200
    assert not any(e["action"] == "delete" and message_id in e["target"] for e in world.audit())


def test_a_page_just_opened_charts_the_depth_and_latency_the_workers_sampled(page, world):
    """The depth and latency charts come from the server's samples (each minute of the last hour), then the
    live value: a page opened after the backlog was sampled draws it at its first poll, with no history of
    its own."""
    assert world.ops.post("/queues/expiry/pause").status_code == 200
    try:
        time.sleep(1.0)  # workers look at the flag every half second
        world.send("from actors.files import file_deleted\n"
                   "for i in range(3): print(file_deleted.send([f'files/charted-{i}']).message_id)")
        assert wait_for(lambda: (world.sampled("expiry") or {}).get("depth", 0) >= 3 and
                        world.sampled("expiry")["oldest_age_s"] > 0, timeout=20 * SAMPLE_EVERY_S, interval=0.5), \
            "no sample of the paused queue reached the series"
        sign_in(page, world.operator.email, world.operator.password)
        charts = page.locator("#charts .queue-charts[data-queue=expiry]")
        drawn = {}
        for name in ("depth", "latency"):
            line = charts.locator(f"figure[data-chart={name}] path.{name}")
            sync_api.expect(line).to_be_attached()
            drawn[name] = json.loads(line.get_attribute("data-values"))
        # An hour of minutes, then now (live).
        assert len(drawn["depth"]) == len(drawn["latency"]) == 61, drawn
        samples = {name: [v for v in values[:-1] if v is not None] for name, values in drawn.items()}
        assert max(samples["depth"], default=0) >= 3 and drawn["depth"][-1] == 3, drawn
        assert max(samples["latency"], default=0) > 0 and drawn["latency"][-1] > 0, drawn
    finally:
        assert world.ops.post("/queues/expiry/resume").status_code == 200
    assert wait_for(lambda: world.depth("expiry") == 0, timeout=10)
