"""Production security settings come from the environment (README "Production")."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
         "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_REDIRECT_EXEMPT"]  # fmt: skip


def _settings(**env) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {NAMES!r}}}))"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_")}
    environ.update(DJANGO_SETTINGS_MODULE="authms.settings", SECRET_KEY="x" * 50, DEBUG="false", **env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults_leave_plain_http_working():
    values = _settings()
    assert values["SECURE_HSTS_SECONDS"] == 0 and values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] is None and values["SESSION_COOKIE_SECURE"] is False


def test_behind_a_tls_proxy_everything_is_switched_on_from_the_environment():
    values = _settings(
        SECURE_HSTS_SECONDS="31536000", SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_SSL_REDIRECT="true",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO", SECURE_COOKIES="true",
    )  # fmt: skip
    assert values["SECURE_HSTS_SECONDS"] == 31536000 and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_REDIRECT_EXEMPT"] == ["^api/v1/health/?$"]


def test_health_probes_over_plain_http_are_not_redirected(db, settings):
    from rest_framework.test import APIClient

    settings.SECURE_SSL_REDIRECT = True
    assert APIClient().get("/api/v1/health").status_code == 200
    assert APIClient().get("/api/v1/communication/logs").status_code == 301
