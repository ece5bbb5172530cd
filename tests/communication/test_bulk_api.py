"""POST /api/v1/communication/bulk (seed 002) through the real URL stack."""

import pytest
from django.core.cache import cache

from communication.models import Batch, CommunicationLog, Suppression
from templates.models import Template

URL = "/api/v1/communication/bulk"


@pytest.fixture
def post(client_for, alice):
    """POST as alice (or another user) with a JSON body; after-commit dispatch runs inline."""

    def send(body, user=None, **headers):
        return client_for(user or alice).post(URL, body, format="json", **headers)

    return send


@pytest.fixture
def sms_template(tenant_a):
    return Template.objects.create(
        tenant=tenant_a,
        code="verify_code",
        channel="sms",
        name="Code",
        body="Your code is {{code}}, valid {{minutes}} min.",
    )


def _sms(**overrides):
    return {"channel": "sms", "content": "Hello", "recipients": ["13800138000"], **overrides}


def _assert_400(response, field):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == 400 and field in body["errors"], body
    return body


def test_creates_one_pending_log_per_recipient_in_request_order(
    post, alice, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            _sms(recipients=["13900139000", "13800138000"], content="Hi {{name}}", variables={"name": "Li"})
        )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200 and body["total"] == 2 and body["batch_id"].startswith("bat_")
    assert body["pagination"] == {
        "page": 1,
        "page_size": 2,
        "total": 2,
        "total_pages": 1,
        "has_next": False,
        "has_prev": False,
    }
    assert [item["recipient"] for item in body["items"]] == ["139****9000", "138****8000"]
    assert {item["status"] for item in body["items"]} == {"pending"}
    assert {item["content"] for item in body["items"]} == {"Hi Li"}
    assert {item["batch_id"] for item in body["items"]} == {body["batch_id"]}
    assert {item["user_id"] for item in body["items"]} == {alice.id}
    assert [log.recipient for log in CommunicationLog.objects.order_by("id")] == [
        "+8613900139000",
        "+8613800138000",
    ]
    assert len(callbacks) == 1 and recording_provider.received == []  # nothing sent before commit


def test_after_commit_the_worker_sends_every_log(
    post, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        body = post(_sms(recipients=["13800138000", "13900139000"])).json()
    assert sorted(m.recipient for m in recording_provider.received) == ["+8613800138000", "+8613900139000"]
    logs = CommunicationLog.objects.filter(batch_id=body["batch_id"])
    assert {log.status for log in logs} == {"sent"} and all(
        log.sent_at and log.provider_message_id for log in logs
    )
    assert Batch.objects.get(id=body["batch_id"]).completed_at is not None


def test_duplicates_are_sent_once(post, recording_provider):
    body = post(_sms(recipients=["13800138000", "+86 138 0013 8000", "+8613800138000"])).json()
    assert body["total"] == 1


def test_invalid_and_suppressed_recipients_get_failed_logs_not_a_failed_request(
    post, alice, recording_provider
):
    Suppression.objects.create(tenant=alice.tenant, channel="sms", recipient="+8613900139000")
    items = post(_sms(recipients=["13800138000", "12345", "13900139000"])).json()["items"]
    assert [item["status"] for item in items] == ["pending", "failed", "failed"]
    assert "Not a valid phone number" in items[1]["error"]
    assert "suppression list" in items[2]["error"]


def test_all_recipients_invalid_is_still_200_and_the_batch_is_complete(post, recording_provider):
    response = post(_sms(recipients=["1", "2"]))
    assert response.status_code == 200
    assert {item["status"] for item in response.json()["items"]} == {"failed"}
    assert Batch.objects.get(id=response.json()["batch_id"]).completed_at is not None


def test_suppression_is_per_tenant_and_channel(post, bob, recording_provider):
    Suppression.objects.create(tenant=bob.tenant, channel="sms", recipient="+8613800138000")
    assert post(_sms()).json()["items"][0]["status"] == "pending"


def test_email_needs_a_subject_and_gets_a_lower_cased_domain(post, recording_provider):
    _assert_400(post({"channel": "email", "content": "Hi", "recipients": ["a@example.com"]}), "subject")
    item = post(
        {"channel": "email", "content": "Hi", "subject": "News", "recipients": ["Ann@EXAMPLE.com"]}
    ).json()["items"][0]
    assert item["recipient"] == "A***@example.com" and item["subject"] == "News"
    assert CommunicationLog.objects.get(id=item["id"]).recipient == "Ann@example.com"


def test_template_is_rendered_and_linked(post, sms_template, recording_provider):
    item = post(
        _sms(content=None, template="verify_code", variables={"code": "4321", "minutes": "5"})
    ).json()["items"][0]
    assert item["content"] == "Your code is 4321, valid 5 min." and item["template_id"] == sms_template.id


def test_missing_template_variables_are_listed(post, sms_template):
    body = _assert_400(post(_sms(template="verify_code", variables={"other": "x"})), "variables")
    assert "code, minutes" in body["message"]


def test_missing_inline_variables_are_listed(post):
    body = _assert_400(post(_sms(content="Hi {{name}} {{code}}")), "variables")
    assert "name, code" in body["message"]


def test_sensitive_template_masks_stored_and_returned_content_but_provider_gets_real_text(
    post, sms_template, recording_provider, django_capture_on_commit_callbacks
):
    sms_template.sensitive = True
    sms_template.save()
    with django_capture_on_commit_callbacks(execute=True):
        item = post(_sms(template="verify_code", variables={"code": "987654", "minutes": "5"})).json()[
            "items"
        ][0]
    assert item["content"] == "Your code is ******, valid ****** min."
    log = CommunicationLog.objects.get(id=item["id"])
    assert "987654" not in log.content and log.send_payload is None  # the real text is erased once sent
    assert recording_provider.received[0].body == "Your code is 987654, valid 5 min."


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: setattr(t, "is_active", False),
        lambda t: setattr(t, "channel", "email"),
        lambda t: setattr(t, "code", "other"),
    ],
)
def test_unknown_inactive_or_other_channel_template_is_404(post, sms_template, mutate):
    mutate(sms_template)
    sms_template.save()
    response = post(_sms(template="verify_code", variables={"code": "1", "minutes": "1"}))
    assert response.status_code == 404 and "verify_code" in response.json()["message"]


def test_another_tenants_template_is_404(post, tenant_b):
    Template.objects.create(tenant=tenant_b, code="verify_code", channel="sms", name="x", body="{{code}}")
    assert post(_sms(template="verify_code", variables={"code": "1"})).status_code == 404


def test_tenant_admin_sends_on_behalf_of_a_user_of_their_tenant(post, ada, alice, recording_provider):
    body = post(_sms(user_id=alice.id), user=ada).json()
    assert body["items"][0]["user_id"] == alice.id
    batch = Batch.objects.get(id=body["batch_id"])
    assert batch.sender_id == ada.id and batch.user_id == alice.id


def test_plain_user_sending_on_behalf_of_another_is_403(post, ada):
    assert post(_sms(user_id=ada.id)).status_code == 403


def test_user_id_of_another_tenant_is_404(post, ada, bob):
    assert post(_sms(user_id=bob.id), user=ada).status_code == 404


@pytest.mark.parametrize(
    "body,field",
    [
        ({"channel": "sms", "content": "x"}, "recipients"),
        (_sms(recipients=[]), "recipients"),
        (_sms(recipients="13800138000"), "recipients"),
        (_sms(recipients=[13800138000]), "recipients[0]"),
        (_sms(recipients=["13800138000", None]), "recipients[1]"),
        (_sms(recipients=[["13800138000"]]), "recipients[0]"),
        ({"content": "x", "recipients": ["1"]}, "channel"),
        (_sms(channel="SMS"), "channel"),
        (_sms(channel="pigeon"), "channel"),
        (_sms(content=None), "content"),
        (_sms(content=""), "content"),
        (_sms(content=5), "content"),
        (_sms(variables={"code": 123}), "variables.code"),
        (_sms(variables={"code": None}), "variables.code"),
        (_sms(variables=["code"]), "variables"),
        (_sms(subject="x" * 256), "subject"),
        (_sms(content="x" * 1001), "content"),
        (_sms(template=""), "template"),
        (_sms(recipients=["1" * 321]), "recipients[0]"),
    ],
)
def test_bad_input_is_400_with_the_field_named(post, body, field):
    body = {key: value for key, value in body.items() if value is not None or key == "recipients"}
    _assert_400(post(body), field)


def test_channel_error_lists_allowed_values(post):
    assert "sms, email" in post(_sms(channel="pigeon")).json()["message"]


def test_over_the_recipient_limit_is_400(post, settings):
    settings.BULK_MAX_RECIPIENTS = 3
    body = _assert_400(post(_sms(recipients=[f"1380013800{i}" for i in range(4)])), "recipients")
    assert "At most 3" in body["message"]
    assert CommunicationLog.objects.count() == 0


def test_body_over_the_email_size_limit_is_400(post, settings):
    settings.EMAIL_MAX_LENGTH = 10
    _assert_400(
        post({"channel": "email", "subject": "s", "content": "x" * 11, "recipients": ["a@b.co"]}), "content"
    )


def test_malformed_json_is_400(client_for, alice):
    response = client_for(alice).post(URL, '{"channel": "sms", ', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["message"]


def test_wrong_content_type_is_415(client_for, alice):
    response = client_for(alice).post(URL, "channel=sms", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.json()["code"] == 415


def test_body_that_is_not_an_object_is_400(client_for, alice):
    response = client_for(alice).post(URL, "[1, 2]", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == 400


def test_no_token_is_401(db):
    from rest_framework.test import APIClient

    assert APIClient().post(URL, _sms(), format="json").status_code == 401


def test_bad_input_creates_nothing(post):
    post(_sms(recipients=[1]))
    post(_sms(content="{{missing}}"))
    assert CommunicationLog.objects.count() == 0 and Batch.objects.count() == 0


# --- Idempotency-Key ----------------------------------------------------------------------


def test_same_key_and_body_replays_the_original_response_and_sends_nothing_more(
    post, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(_sms(), HTTP_IDEMPOTENCY_KEY="order-1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post(_sms(), HTTP_IDEMPOTENCY_KEY="order-1")
    assert second.status_code == 200 and second.json() == first.json()
    assert CommunicationLog.objects.count() == 1 and len(recording_provider.received) == 1 and callbacks == []


def test_same_key_with_another_body_is_409(post, recording_provider):
    post(_sms(), HTTP_IDEMPOTENCY_KEY="order-1")
    response = post(_sms(content="Different"), HTTP_IDEMPOTENCY_KEY="order-1")
    assert response.status_code == 409 and "different request body" in response.json()["message"]
    assert CommunicationLog.objects.count() == 1


def test_keys_are_per_user(post, ada, recording_provider):
    post(_sms(), HTTP_IDEMPOTENCY_KEY="k")
    assert post(_sms(), user=ada, HTTP_IDEMPOTENCY_KEY="k").status_code == 200
    assert CommunicationLog.objects.count() == 2


def test_a_failed_request_does_not_burn_its_key(post, recording_provider):
    assert post(_sms(content="{{x}}"), HTTP_IDEMPOTENCY_KEY="k").status_code == 400
    assert post(_sms(), HTTP_IDEMPOTENCY_KEY="k").status_code == 200


def test_expired_key_can_be_reused(post, settings, recording_provider):
    from authms.models import IdempotencyKey

    post(_sms(), HTTP_IDEMPOTENCY_KEY="k")
    IdempotencyKey.objects.update(created_at="2000-01-01T00:00:00Z")
    assert post(_sms(content="new text"), HTTP_IDEMPOTENCY_KEY="k").status_code == 200
    assert CommunicationLog.objects.count() == 2


def test_overlong_idempotency_key_is_400(post):
    _assert_400(post(_sms(), HTTP_IDEMPOTENCY_KEY="k" * 256), "Idempotency-Key")


# --- Throttling and batches ---------------------------------------------------------------


def test_throttled_requests_get_429_with_retry_after(post, settings, recording_provider):
    settings.BULK_THROTTLE_RATE = "2/min"
    cache.clear()
    assert [post(_sms()).status_code for _ in range(2)] == [200, 200]
    response = post(_sms())
    assert response.status_code == 429 and response.json()["code"] == 429
    assert 0 < int(response["Retry-After"]) <= 60
    cache.clear()


def test_batch_progress_counts_statuses(
    post, client_for, alice, ada, bob, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = post(_sms(recipients=["13800138000", "1"])).json()["batch_id"]
    url = f"/api/v1/communication/batches/{batch_id}"
    data = client_for(alice).get(url).json()["data"]
    assert data["counts"] == {"pending": 0, "sent": 1, "failed": 1, "delivered": 0}
    assert data["total"] == 2 and data["completed"] is True
    assert client_for(ada).get(url).status_code == 200
    assert client_for(bob).get(url).status_code == 404
    assert client_for(alice).get("/api/v1/communication/batches/bat_nope").status_code == 404


# --- Broker outage ------------------------------------------------------------------------


def test_request_succeeds_and_nothing_is_lost_when_the_broker_is_down(
    post, recording_provider, unreachable_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(_sms(recipients=["13800138000", "13900139000"]))
    assert response.status_code == 200
    assert set(CommunicationLog.objects.values_list("status", flat=True)) == {"pending"}
    assert recording_provider.received == []


@pytest.fixture
def hung_redis():
    """A real Redis, stopped with SIGSTOP: it accepts connections and never answers."""
    import os
    import signal
    import socket
    import subprocess
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGSTOP)
    yield f"redis://127.0.0.1:{port}/1"
    os.kill(server.pid, signal.SIGCONT)
    server.terminate()
    server.wait()


def test_a_hung_broker_costs_a_publish_seconds_not_minutes(hung_redis):
    """In a fresh process configured like production (the broker URL from the environment)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    code = (
        "import django; django.setup(); "
        "from communication.services import enqueue_dispatch; enqueue_dispatch('bat_X', 1)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "authms.settings", "CELERY_BROKER_URL": hung_redis,
           "CELERY_TASK_ALWAYS_EAGER": "false", "REDIS_URL": ""}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[2],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 8
    assert "the pending sweeper will pick it up" in done.stderr


def test_the_sweeper_sends_what_the_broker_outage_left_pending(
    post, recording_provider, django_capture_on_commit_callbacks
):
    from communication.services import sweep_pending
    from tests.conftest import celery_config

    with celery_config(task_always_eager=False, broker_url="redis://127.0.0.1:1/0"):
        with django_capture_on_commit_callbacks(execute=True):
            post(_sms(recipients=["13800138000", "13900139000"]))
    CommunicationLog.objects.update(created_at="2000-01-01T00:00:00Z")  # older than the sweep delay
    report = sweep_pending()  # broker back (eager here): the batch is dispatched
    assert report.requeued_batches == 1
    assert set(CommunicationLog.objects.values_list("status", flat=True)) == {"sent"}
    assert len(recording_provider.received) == 2


def test_body_over_the_upload_limit_is_413(client_for, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client_for(alice).post(URL, _sms(recipients=["13800138000"] * 100), format="json")
    assert response.status_code == 413 and "larger than" in response.json()["message"]


def test_a_full_size_request_fits_the_default_upload_limit(post, recording_provider):
    recipients = [f"+86138{index:08d}" for index in range(10_000)]
    response = post(_sms(recipients=recipients, content="x" * 1000))
    assert response.status_code == 200 and response.json()["total"] == 10_000


def test_an_oversized_list_of_junk_is_one_error_not_one_per_item(post, settings):
    settings.BULK_MAX_RECIPIENTS = 10
    response = post(_sms(recipients=[1] * 50_000))
    body = _assert_400(response, "recipients")
    assert list(body["errors"]) == ["recipients"] and "At most 10 items" in body["message"]


def test_sensitive_subject_is_masked_too_and_the_provider_gets_the_real_one(
    post, alice, recording_provider, django_capture_on_commit_callbacks
):
    Template.objects.create(
        tenant=alice.tenant, code="reset", channel="email", name="Reset", subject="Code {{code}}",
        body="Your code is {{code}}", sensitive=True,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        item = post(
            {
                "channel": "email",
                "template": "reset",
                "variables": {"code": "777111"},
                "recipients": ["a@b.co"],
            }
        ).json()["items"][0]
    assert (
        item["subject"] == "Code ******"
        and "777111" not in CommunicationLog.objects.get(id=item["id"]).subject
    )
    (message,) = recording_provider.received
    assert (message.subject, message.body) == ("Code 777111", "Your code is 777111")


def test_recipients_times_text_is_capped(post, settings):
    settings.BULK_MAX_TOTAL_CHARS = 100
    body = _assert_400(post(_sms(content="x" * 60, recipients=["13800138000", "13900139000"])), "recipients")
    assert "smaller batches" in body["message"]


def test_prefer_return_minimal_skips_the_items(post, django_capture_on_commit_callbacks):
    response = post(_sms(recipients=["13800138000", "13900139000"]), HTTP_PREFER="return=minimal")
    body = response.json()
    assert response.status_code == 200 and response["Preference-Applied"] == "return=minimal"
    assert body["items"] == [] and body["total"] == 2 and body["batch_id"].startswith("bat_")
    assert CommunicationLog.objects.filter(batch_id=body["batch_id"]).count() == 2


def test_without_prefer_the_seeds_full_answer_is_kept(post):
    response = post(_sms(recipients=["13800138000"]))
    assert len(response.json()["items"]) == 1 and "Preference-Applied" not in response


def test_when_every_bulk_slot_is_taken_the_request_waits_its_turn_and_writes_nothing(post, settings):
    from authms.throttling import acquire_slot

    settings.BULK_CONCURRENCY = 1
    release = acquire_slot("bulk-send", slots=1, per_process=5, lease_seconds=60)  # another process's bulk
    try:
        response = post(_sms())
        assert response.status_code == 503 and response["Retry-After"] == "2"
        assert response.json()["code"] == 503 and not CommunicationLog.objects.exists()
    finally:
        release()
    assert post(_sms()).status_code == 200


def test_slots_are_given_back_when_the_request_fails(post, settings):
    settings.BULK_CONCURRENCY = 1
    assert post({"channel": "fax"}).status_code == 400
    assert post(_sms()).status_code == 200


def test_with_the_cache_down_the_per_process_limit_still_applies(db, monkeypatch):
    from django.core.cache import cache

    from authms.throttling import acquire_slot

    monkeypatch.setattr(cache, "add", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")))
    first = acquire_slot("test-slot", slots=5, per_process=1, lease_seconds=5)
    assert first is not None and acquire_slot("test-slot", slots=5, per_process=1, lease_seconds=5) is None
    first()
    assert acquire_slot("test-slot", slots=5, per_process=1, lease_seconds=5) is not None
