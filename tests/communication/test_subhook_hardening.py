"""The SUBHOOK receiver under hostile input: every malformed push is a 4xx, never a 500,
and a captured (token, signature) pair cannot be replayed with other fields."""

import hashlib

import pytest
from rest_framework.test import APIClient

from communication.models import ReceiptToken, Suppression
from communication.services import receipt_tokens_purge
from tests.communication.test_status_sync import SUBHOOK_URL, _post_subhook
from tests.conftest import SUBHOOK_KEY

TOKEN = "067ef7e2f286a9a56eabb07dc9657852"
SIGNATURE = hashlib.md5(f"{TOKEN}{SUBHOOK_KEY}".encode()).hexdigest()


def _post_raw(body: bytes, content_type: str):
    return APIClient().post(SUBHOOK_URL, body, content_type=content_type)


def _assert_4xx(response, status):
    assert response.status_code == status, response.content
    assert response.json()["code"] == status


@pytest.fixture
def subhook_key(db, settings):
    settings.SUBMAIL_SUBHOOK_KEY = SUBHOOK_KEY


def test_a_non_ascii_signature_is_403_not_500(subhook_key):
    _assert_4xx(_post_raw(b"token=abc&signature=%C3%A9", "application/x-www-form-urlencoded"), 403)


def test_a_lone_surrogate_token_is_400(subhook_key):
    _assert_4xx(_post_raw(b'{"token": "\\ud800", "signature": "x"}', "application/json"), 400)


@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"null", b"17", b"true"])
def test_a_json_body_that_is_not_an_object_is_400(subhook_key, body):
    _assert_4xx(_post_raw(body, "application/json"), 400)


@pytest.mark.parametrize("token", [["a"], {"a": 1}, 1.5, "t" * 65])
def test_a_token_of_the_wrong_shape_is_400(subhook_key, token):
    response = APIClient().post(SUBHOOK_URL, {"token": token, "signature": SIGNATURE}, format="json")
    _assert_4xx(response, 400)


@pytest.mark.parametrize("timestamp", ["99999999999999999", "-5", "1e9", "abc", 99999999999999999, -5])
def test_a_signed_push_with_an_impossible_timestamp_is_400(sent_logs, timestamp):
    (log,) = sent_logs(1)
    response = _post_subhook(
        {"events": "delivered", "send_id": log.provider_message_id, "timestamp": timestamp}, as_json=True
    )
    _assert_4xx(response, 400)
    log.refresh_from_db()
    assert log.status == "sent"


@pytest.mark.parametrize("send_id", [["a", "b"], {"id": "a"}, "s" * 65])
def test_a_signed_push_with_a_send_id_that_is_not_a_short_string_is_400(sent_logs, send_id):
    sent_logs(1)
    _assert_4xx(_post_subhook({"events": "delivered", "send_id": send_id}, as_json=True), 400)


@pytest.mark.parametrize("as_json", [False, True])
def test_a_signed_push_with_a_nul_in_send_id_is_400(sent_logs, as_json):
    sent_logs(1)
    _assert_4xx(_post_subhook({"events": "delivered", "send_id": "a\x00b"}, as_json=as_json), 400)


def test_a_replayed_token_with_other_fields_is_refused_and_changes_nothing(sent_logs):
    first, second = sent_logs(2)
    genuine = {"events": "delivered", "send_id": first.provider_message_id}
    assert _post_subhook(genuine, token=TOKEN).status_code == 200
    forged = {"events": "dropped", "send_id": second.provider_message_id, "report": "UNDELIV"}
    response = _post_subhook(forged, token=TOKEN)
    _assert_4xx(response, 403)
    assert "token" in response.json()["message"]
    second.refresh_from_db()
    assert second.status == "sent"


def test_a_replayed_unsubscribe_reply_cannot_suppress_another_number(sent_logs):
    sent_logs(2)
    assert (
        _post_subhook({"events": "mo", "address": "13900000000", "content": "hi"}, token=TOKEN).status_code
        == 200
    )
    forged = {"events": "mo", "address": "13900000001", "content": "TD"}
    _assert_4xx(_post_subhook(forged, token=TOKEN), 403)
    assert not Suppression.objects.exists()


def test_an_identical_redelivery_is_acknowledged_and_applied_once(sent_logs):
    (log,) = sent_logs(1)
    push = {"events": "delivered", "send_id": log.provider_message_id}
    first = _post_subhook(push, token=TOKEN).json()["data"]
    again = _post_subhook(push, token=TOKEN).json()["data"]
    assert (first["applied"], first["duplicate"]) == (1, False)
    assert (again["applied"], again["duplicate"]) == (0, True)
    assert ReceiptToken.objects.count() == 1


def test_a_redelivery_as_json_of_a_form_push_is_the_same_push(sent_logs):
    (log,) = sent_logs(1)
    push = {"events": "delivered", "send_id": log.provider_message_id}
    assert _post_subhook(push, token=TOKEN).status_code == 200
    again = _post_subhook(push, token=TOKEN, as_json=True)
    assert again.status_code == 200 and again.json()["data"]["duplicate"] is True


def test_a_push_with_a_bad_signature_records_no_token(sent_logs):
    (log,) = sent_logs(1)
    _post_subhook({"events": "delivered", "send_id": log.provider_message_id}, key="wrong")
    assert not ReceiptToken.objects.exists()


def test_old_tokens_are_purged_after_the_retention(sent_logs, settings):
    from datetime import timedelta

    from django.utils import timezone

    ReceiptToken.objects.create(provider="submail", token="old", fingerprint="x",
                                received_at=timezone.now() - timedelta(days=31))  # fmt: skip
    ReceiptToken.objects.create(provider="submail", token="new", fingerprint="x")
    assert receipt_tokens_purge() == 1
    assert list(ReceiptToken.objects.values_list("token", flat=True)) == ["new"]
