import os
import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient


def test_health_reports_database_cache_and_broker(db, on_postgres):
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 200
    checks = response.json()["data"]["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }
    assert checks["database"]["vendor"] == ("postgresql" if on_postgres else checks["database"]["vendor"])


def test_health_is_503_when_the_cache_fails(db, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "set", broken)
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == 503 and body["data"]["checks"]["cache"]["status"] == "error"
    assert "cache is down" in body["data"]["checks"]["cache"]["error"]


@pytest.fixture
def real_broker(settings):
    """Turn off eager mode so the probe talks to the Redis broker the test command started."""
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.fail("CELERY_BROKER_URL is not set: run the suite through `make test`.")
    settings.CELERY_TASK_ALWAYS_EAGER = False


def test_health_connects_to_the_real_broker(db, real_broker):
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 200
    broker = response.json()["data"]["checks"]["broker"]
    assert broker["status"] == "ok" and "mode" not in broker


def test_health_is_503_when_the_broker_is_unreachable(db, real_broker, monkeypatch):
    from kombu import Connection

    from authms.celery import app

    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))
    response = APIClient().get("/api/v1/health")
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
