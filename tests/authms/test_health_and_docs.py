import os
import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient


@pytest.fixture
def staff_client(ada, client_for):
    return client_for(ada)


def test_health_reports_database_cache_and_broker_to_staff(staff_client, on_postgres):
    response = staff_client.get("/api/v1/health")
    assert response.status_code == 200
    checks = response.json()["data"]["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }
    assert checks["database"]["vendor"] == ("postgresql" if on_postgres else checks["database"]["vendor"])


def test_health_is_503_when_the_cache_fails(staff_client, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(type(cache._connections[cache._alias]), "set", broken)  # every thread's cache
    response = staff_client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == 503 and body["data"]["checks"]["cache"]["status"] == "error"
    assert "cache is down" in body["data"]["checks"]["cache"]["error"]


def test_anonymous_callers_get_the_status_without_internals(db):
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 200 and response.json()["data"] == {"status": "ok"}


@pytest.mark.parametrize("make_caller", ["plain user", "wrong probe token", "garbage token"])
def test_details_stay_hidden_from_everyone_but_staff_and_probes(alice, client_for, settings, make_caller):
    settings.HEALTH_DETAIL_TOKEN = "probe-secret"
    client = {
        "plain user": lambda: client_for(alice),
        "wrong probe token": lambda: APIClient(HTTP_X_HEALTH_TOKEN="nope"),
        "garbage token": lambda: APIClient(HTTP_AUTHORIZATION="Bearer garbage"),
    }[make_caller]()
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and "checks" not in response.json()["data"]


def test_a_probe_with_the_health_token_sees_the_checks(db, settings):
    settings.HEALTH_DETAIL_TOKEN = "probe-secret"
    response = APIClient(HTTP_X_HEALTH_TOKEN="probe-secret").get("/api/v1/health")
    assert set(response.json()["data"]["checks"]) == {"database", "cache", "broker"}


def test_anonymous_503_says_degraded_and_nothing_more(db, monkeypatch):
    monkeypatch.setattr(
        type(cache._connections[cache._alias]),
        "set",
        lambda *a, **k: (_ for _ in ()).throw(ConnectionError("down")),
    )
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 503 and response.json()["data"] == {"status": "degraded"}


@pytest.fixture
def real_broker(settings):
    """Turn off eager mode so the probe talks to the Redis broker the test command started."""
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.fail("CELERY_BROKER_URL is not set: run the suite through `make test`.")
    settings.CELERY_TASK_ALWAYS_EAGER = False


def test_a_hung_dependency_is_reported_down_within_the_health_timeout(staff_client, settings, monkeypatch):
    import time

    from django.core.cache import caches

    settings.HEALTH_TIMEOUT_SECONDS = 0.5
    monkeypatch.setattr(type(caches["default"]), "set", lambda *a, **k: time.sleep(3))
    started = time.monotonic()
    response = staff_client.get("/api/v1/health")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert "no answer within" in response.json()["data"]["checks"]["cache"]["error"]


def test_health_connects_to_the_real_broker(staff_client, real_broker):
    response = staff_client.get("/api/v1/health")
    assert response.status_code == 200
    broker = response.json()["data"]["checks"]["broker"]
    assert broker["status"] == "ok" and "mode" not in broker


def test_health_is_503_when_the_broker_is_unreachable(staff_client, real_broker, monkeypatch):
    from kombu import Connection

    from authms.celery import app

    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))
    response = staff_client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["data"]["checks"]["broker"]["status"] == "error"


def test_schema_lists_documented_paths_codes_and_envelopes(db):
    response = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    logs = schema["paths"]["/api/v1/communication/logs"]["get"]
    assert set(logs["responses"]) == {"200", "400", "401", "403", "500"}
    admin = schema["paths"]["/api/v1/admin/communication/logs"]["get"]
    assert set(admin["responses"]) == {"200", "400", "401", "403", "500"}
    components = schema["components"]["schemas"]
    assert {"code", "message", "timestamp"} <= set(components["SimpleResponse"]["properties"])
    listing = components["PaginatedCommunicationLogList"]["properties"]
    assert {"code", "message", "items", "total", "pagination", "timestamp"} <= set(listing)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_swagger_ui_is_served_locally_without_cdn(db, client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/") for asset in assets), assets
    assert "cdn" not in html.lower()
    bundle = next(asset for asset in assets if asset.endswith("swagger-ui-bundle.js"))
    assert client.get(bundle).status_code == 200


def test_no_model_changes_without_migrations(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/health/"])
def test_health_needs_no_token_and_no_redirect(db, path):
    assert APIClient().get(path).status_code == 200


def test_schema_generates_without_warnings_and_validates(db, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_bulk_endpoint_documents_its_error_codes(db):
    schema = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    bulk = schema["paths"]["/api/v1/communication/bulk"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "429", "500"} <= set(bulk["responses"])


def _schema():
    return APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_schema_states_the_limits_the_serializers_enforce(db, settings):
    components = _schema()["components"]["schemas"]
    recipients = components["BulkSendRequestRequest"]["properties"]["recipients"]
    assert (recipients["minItems"], recipients["maxItems"]) == (1, settings.BULK_MAX_RECIPIENTS)
    notify = components["AdminNotifyRequest"]["properties"]
    assert notify["user_ids"]["maxItems"] == 10_000
    assert notify["title"]["maxLength"] == 200 and notify["action_url"]["maxLength"] == 2000
    assert notify["event_type"]["pattern"].startswith("^[a-z]")


def test_schema_documents_the_idempotency_key_shape(db):
    bulk = _schema()["paths"]["/api/v1/communication/bulk"]["post"]
    header = next(p for p in bulk["parameters"] if p["name"] == "Idempotency-Key")
    assert header["schema"]["maxLength"] == 255 and "pattern" in header["schema"]


@pytest.mark.parametrize("path", ["/api/v1/schema", "/api/v1/docs"])
def test_wrong_method_on_schema_and_docs_is_the_json_envelope(db, path):
    response = APIClient().post(path)
    assert response.status_code == 405 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == 405
