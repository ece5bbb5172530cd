"""Bodies no view can store are refused once, in the parser layer, on every JSON endpoint."""

import json

import pytest
from rest_framework.test import APIClient

from authms.api.parsers import MAX_JSON_DEPTH

DEEP = "[" * 5000 + "]" * 5000

ANONYMOUS_JSON_ENDPOINTS = [
    "/api/v1/auth/token",
    "/api/v1/auth/token/refresh",
    "/api/v1/auth/logout",
    "/api/v1/providers/submail/subhook",
]
AUTHENTICATED_JSON_ENDPOINTS = [
    "/api/v1/communication/bulk",
    "/api/v1/admin/notifications",
]


def _post_raw(client, path, raw: str):
    return client.post(path, raw.encode("utf-8", "surrogatepass"), content_type="application/json")


def _assert_400(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == 400 and body["message"]


@pytest.mark.parametrize("path", ANONYMOUS_JSON_ENDPOINTS)
def test_deeply_nested_json_is_400_on_anonymous_endpoints(db, path):
    response = _post_raw(APIClient(), path, DEEP)
    _assert_400(response)
    assert "nested" in response.json()["message"]


@pytest.mark.parametrize("path", AUTHENTICATED_JSON_ENDPOINTS)
def test_deeply_nested_json_is_400_on_authenticated_endpoints(ada, client_for, path):
    _assert_400(_post_raw(client_for(ada), path, DEEP))


def test_nesting_just_within_the_limit_parses(ada, client_for):
    nested = {"k": 1}
    for _ in range(MAX_JSON_DEPTH - 2):  # the body and metadata are two of the levels
        nested = {"k": nested}
    body = {"audience": "user", "user_id": ada.id, "type": "system", "event_type": "a.b", "title": "t",
            "metadata": nested}  # fmt: skip
    assert client_for(ada).post("/api/v1/admin/notifications", body, format="json").status_code == 201
    body["metadata"] = {"k": body["metadata"]}
    _assert_400(client_for(ada).post("/api/v1/admin/notifications", body, format="json"))


@pytest.mark.parametrize(
    "metadata,field",
    [
        ({"a\x00b": "x"}, "metadata.a\\u0000b"),
        ({"note": "a\x00b"}, "metadata.note"),
        ({"outer": {"inner": ["ok", "a\x00b"]}}, "metadata.outer.inner[1]"),
    ],
)
def test_nul_in_notification_metadata_keys_and_values_is_400_naming_the_field(
    ada, client_for, metadata, field
):
    body = {"audience": "user", "user_id": ada.id, "type": "system", "event_type": "a.b", "title": "t",
            "metadata": metadata}  # fmt: skip
    response = client_for(ada).post("/api/v1/admin/notifications", body, format="json")
    _assert_400(response)
    assert field in response.json()["errors"]


@pytest.mark.parametrize("raw_value", ['"\\ud800"', '"a\\udfffb"'])
def test_lone_surrogates_in_json_values_and_keys_are_400(ada, client_for, raw_value):
    for metadata in (f'{{"k": {raw_value}}}', f"{{{raw_value}: 1}}"):
        raw = (
            f'{{"audience": "user", "user_id": "{ada.id}", "type": "system", "event_type": "a.b", '
            f'"title": "t", "metadata": {metadata}}}'
        )
        response = _post_raw(client_for(ada), "/api/v1/admin/notifications", raw)
        _assert_400(response)
        assert "surrogate" in response.json()["message"]


def test_nul_in_bulk_variable_names_is_400(alice, client_for):
    body = {"channel": "sms", "content": "hi {{name}}", "recipients": ["13800138000"],
            "variables": {"name": "x", "b\x00ad": "y"}}  # fmt: skip
    response = client_for(alice).post("/api/v1/communication/bulk", body, format="json")
    _assert_400(response)
    assert "variables.b\\u0000ad" in response.json()["errors"]


def test_nul_in_a_form_encoded_body_is_400(db):
    response = APIClient().post("/api/v1/providers/submail/subhook", "token=abc&send_id=a%00b",
                                content_type="application/x-www-form-urlencoded")  # fmt: skip
    _assert_400(response)
    assert "send_id" in response.json()["errors"]


def test_a_login_with_a_surrogate_username_is_400(db):
    _assert_400(_post_raw(APIClient(), "/api/v1/auth/token", '{"username": "\\ud800", "password": "x"}'))


def test_ordinary_unicode_passes(ada, client_for):
    body = {"audience": "user", "user_id": ada.id, "type": "system", "event_type": "a.b", "title": "通知 😀",
            "metadata": {"键": "值 😀"}}  # fmt: skip
    response = client_for(ada).post("/api/v1/admin/notifications", body, format="json")
    assert response.status_code == 201
    listed = client_for(ada).get("/api/v1/notifications").json()["items"][0]
    assert json.loads(listed["metadata"]) == {"键": "值 😀"}
