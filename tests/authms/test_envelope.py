"""Every answer, including errors nobody planned for, is the JSON envelope."""

import pytest
from rest_framework.test import APIClient

from communication import selectors


def test_unknown_api_path_is_404_envelope(db):
    response = APIClient().get("/api/v1/no/such/endpoint")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == 404 and "No endpoint" in body["message"]


def test_wrong_method_is_405_envelope(client_for, alice):
    response = client_for(alice).delete("/api/v1/communication/logs")
    assert response.status_code == 405 and response.json()["code"] == 405


def test_request_id_is_echoed_when_sane_and_generated_otherwise(client_for, alice):
    client = client_for(alice)
    assert client.get("/api/v1/communication/logs", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    generated = client.get("/api/v1/communication/logs", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]
    assert len(generated) == 32 and generated.isalnum()


def test_unexpected_exception_is_500_envelope_without_traceback(client_for, alice, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(selectors, "log_list_for_user", explode)
    response = client_for(alice).get("/api/v1/communication/logs", HTTP_X_REQUEST_ID="req-500")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == 500 and "req-500" in body["message"]
    assert "secret internal detail" not in response.content.decode()
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize("body", ["{not json", "[1, 2"])
def test_malformed_json_is_400_envelope(db, body):
    response = APIClient().post("/api/v1/auth/token", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == 400


def test_wrong_content_type_is_415_envelope(db):
    response = APIClient().post("/api/v1/auth/token", "username=a", content_type="text/plain")
    assert response.status_code == 415 and response.json()["code"] == 415


def test_disallowed_host_under_the_api_is_400_envelope(db, client):
    response = client.get("/api/v1/health", HTTP_HOST="evil.example")
    assert response.status_code == 400 and response.json()["code"] == 400


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/communication/logs?user_id=%00",
        "/api/v1/admin/communication/logs?recipient=a%00b",
        "/api/v1/notifications/ntf_%00",
        "/api/v1/communication/batches/bat_%00",
    ],
)
def test_nul_bytes_in_path_or_query_are_400_not_500(client_for, ada, path):
    response = client_for(ada).get(path)
    assert response.status_code == 400 and "NUL" in response.json()["message"]


def test_nul_bytes_in_a_json_body_are_400(client_for, alice):
    body = {"channel": "sms", "content": "a\x00b", "recipients": ["13800138000"]}
    response = client_for(alice).post("/api/v1/communication/bulk", body, format="json")
    assert response.status_code == 400 and "content" in response.json()["errors"]


@pytest.mark.parametrize(
    "language,expected",
    [
        ("zh-CN,zh;q=0.9", "page 必须是正整数"),
        ("zh-Hans", "page 必须是正整数"),
        ("en-US", "page must be a positive integer"),
    ],
)
def test_api_errors_follow_accept_language(client_for, alice, language, expected):
    response = client_for(alice).get(
        "/api/v1/communication/logs", {"page": "0"}, HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 400 and expected in response.json()["message"]
    assert response["Content-Language"].lower().startswith(language[:2].lower())


def test_drf_and_simplejwt_messages_are_translated_too(db):
    response = APIClient().get("/api/v1/communication/logs", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert response.status_code == 401 and "身份认证信息未提供" in response.json()["message"]


def test_default_language_comes_from_the_setting(client_for, alice, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    response = client_for(alice).get("/api/v1/communication/logs", {"channel": "fax"})
    assert "未知" in response.json()["message"]


def test_every_message_has_a_chinese_translation():
    """Every entry of the catalog is translated, and every string the code marks for
    translation (single literals) is in the catalog: a new message cannot slip by."""
    import ast
    import re
    from pathlib import Path

    import polib

    root = Path(__file__).resolve().parents[2]
    catalog = polib.pofile(str(root / "authms/locale/zh_Hans/LC_MESSAGES/django.po"))
    untranslated = [entry.msgid for entry in catalog if not entry.translated() or "fuzzy" in entry.flags]
    assert untranslated == []

    known = {entry.msgid for entry in catalog}
    marked = set()
    for path in root.glob("*/**/*.py"):
        top = path.parts[len(root.parts)]
        if top.startswith(".") or top in {"tests", "bench"} or "migrations" in path.parts:  # .venv*
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", ""))
                in {"_", "gettext", "gettext_lazy"}
                and len(node.args) == 1
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                marked.add(node.args[0].value)
    for path in root.glob("*/templates/**/*.html"):
        marked.update(re.findall(r'{% translate "([^"]+)"', path.read_text()))
    assert sorted(marked - known) == []


def test_django_request_log_lines_carry_the_request_id(db):
    """django.request logs "Not Found: …" after the middleware has returned."""
    import logging

    from authms.middleware import RequestIdLogFilter

    seen = []

    class Capture(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Capture()
    handler.addFilter(RequestIdLogFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = APIClient().get("/api/v1/no-such-endpoint", HTTP_X_REQUEST_ID="req-42")
    finally:
        logger.removeHandler(handler)
    assert response["X-Request-ID"] == "req-42"
    assert [record.request_id for record in seen] == ["req-42"]


def test_the_request_id_does_not_leak_into_the_next_request(db):
    from authms.middleware import current_request_id

    APIClient().get("/api/v1/health", HTTP_X_REQUEST_ID="req-1")
    assert current_request_id() == "-"


@pytest.mark.parametrize("key", ["a\x00b", "é", "x" * 256, ""])
def test_an_idempotency_key_that_is_not_printable_ascii_is_400(client_for, alice, key):
    body = {"channel": "sms", "content": "hi", "recipients": ["13800138000"]}
    response = client_for(alice).post(
        "/api/v1/communication/bulk", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
