"""Shared pieces of the end-to-end tests: an authenticated sender, the real broker, a worker."""

import os
import shutil
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections
from rest_framework.test import APIClient

from authms.celery import app
from communication.models import CommunicationLog
from tests.conftest import access_token_for, celery_config, require_service_url
from tests.factories import TenantFactory, UserFactory


@pytest.fixture
def sender(transactional_db):
    tenant = TenantFactory(name="E2E", slug="e2e")
    user = UserFactory(username="e2e-sender", tenant=tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


@pytest.fixture
def real_broker():
    with celery_config(task_always_eager=False, broker_url=require_service_url("CELERY_BROKER_URL")):
        app.control.purge()
        yield app


@pytest.fixture
def worker(real_broker):
    with start_worker(
        real_broker, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        yield
    connections.close_all()


def wait_until(predicate, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


def statuses(batch_id):
    return list(CommunicationLog.objects.filter(batch_id=batch_id).values_list("status", flat=True))


# Playwright's sync API runs an event loop in this thread; the ORM calls these tests make
# around it are ordinary blocking calls, which Django would otherwise refuse there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; `make test` installs it (.ci/ensure-chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, accept_downloads=True, base_url=live_server.url
    )
    page = context.new_page()
    yield page
    context.close()
