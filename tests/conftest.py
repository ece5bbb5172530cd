import functools
import json
import os
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from authms.api.serializers import TenantTokenObtainPairSerializer
from tests.factories import LogFactory, TenantFactory, UserFactory


def pytest_collection_finish(session):
    # In CI an integration test must never quietly run against the wrong database; the
    # fuzz pass on SQLite says so explicitly (TEST_DATABASE=sqlite, see the Makefile).
    on_sqlite_on_purpose = os.environ.get("TEST_DATABASE") == "sqlite"
    if (
        os.environ.get("CI") == "true"
        and not on_sqlite_on_purpose
        and not os.environ.get("DATABASE_URL", "").startswith("postgres")
    ):
        raise pytest.UsageError("CI=true but DATABASE_URL is not PostgreSQL; run through `make test`.")


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Acme", slug="acme")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Globex", slug="globex")


@pytest.fixture
def alice(tenant_a):
    """Plain user in tenant A."""
    return UserFactory(username="alice", tenant=tenant_a)


@pytest.fixture
def ada(tenant_a):
    """Tenant admin of tenant A (in the "Tenant admins" group, like create_user --staff)."""
    from authms.roles import make_tenant_admin

    user = UserFactory(username="ada", tenant=tenant_a, is_staff=True)
    make_tenant_admin(user)
    return user


@pytest.fixture
def bob(tenant_b):
    """Plain user in tenant B."""
    return UserFactory(username="bob", tenant=tenant_b)


@pytest.fixture
def root(tenant_a):
    """Platform admin (sees every tenant)."""
    return UserFactory(username="root", tenant=tenant_a, is_staff=True, is_superuser=True)


def access_token_for(user) -> str:
    return str(TenantTokenObtainPairSerializer.get_token(user).access_token)


@pytest.fixture
def client_for():
    """An APIClient carrying a real signed JWT for the given user."""

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
        return client

    return make


@pytest.fixture
def make_logs():
    """Create logs with strictly decreasing created_at (index 0 is newest)."""

    def make(count, **fields):
        now = timezone.now()
        return [LogFactory(created_at=now - timedelta(seconds=i), **fields) for i in range(count)]

    return make


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the shared cache; each test starts with none."""
    from authms import throttling

    cache.clear()
    throttling._fallback.clear()
    throttling._cache_down_until = 0.0


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def recording_provider(settings):
    """Route SMS and email through tests.fakes.providers.RecordingProvider."""
    from providers.registry import reset_cache
    from tests.fakes.providers import RecordingProvider

    settings.COMMUNICATION_PROVIDERS = {
        **settings.COMMUNICATION_PROVIDERS,
        "recording": "tests.fakes.providers.RecordingProvider",
    }
    settings.CHANNEL_PROVIDERS = {"sms": "recording", "email": "recording"}
    RecordingProvider.reset()
    reset_cache()
    yield RecordingProvider
    RecordingProvider.reset()
    reset_cache()


@contextmanager
def celery_config(**conf):
    """Temporarily change the Celery app's configuration, dropping its cached broker pools."""
    from kombu import pools

    from authms.celery import app

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None
        pools.reset()

    previous = {key: app.conf.get(key) for key in conf}
    app.conf.update(**conf)
    reset_pools()
    try:
        yield app
    finally:
        app.conf.update(**previous)
        reset_pools()


@pytest.fixture
def unreachable_broker():
    with celery_config(task_always_eager=False, broker_url="redis://127.0.0.1:1/0"):
        yield


def require_service_url(name: str) -> str:
    """URLs of the servers `make test` starts; missing ones fail the test rather than skip it."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite through `make test`, which starts the servers.")
    return value


SUBMAIL_APPID, SUBMAIL_APPKEY, SUBHOOK_KEY = "10001", "test-appkey-123", "subhook-key-456"


@pytest.fixture
def fake_submail(settings):
    """A running fake SUBMAIL server, with settings pointing SMS at it."""
    from providers.registry import reset_cache
    from tests.fakes.submail_server import FakeSubmail

    fake = FakeSubmail({SUBMAIL_APPID: SUBMAIL_APPKEY}, subhook_key=SUBHOOK_KEY).start()
    settings.SUBMAIL_APPID, settings.SUBMAIL_APPKEY = SUBMAIL_APPID, SUBMAIL_APPKEY
    settings.SUBMAIL_BASE_URL, settings.SUBMAIL_SIGN_TYPE = fake.url, "md5"
    settings.SUBMAIL_SIGNATURE, settings.SUBMAIL_SUBHOOK_KEY = "【Acme】", SUBHOOK_KEY
    settings.SUBMAIL_READ_TIMEOUT = 1.0
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "sms": "submail"}
    reset_cache()
    cache.clear()  # the per-minute status-sync lock lives in the shared cache
    yield fake
    fake.stop()
    reset_cache()


ALIYUN_KEY_ID, ALIYUN_KEY_SECRET, ALIYUN_RECEIPT_TOKEN = (
    "LTAI-test",
    "aliyun-test-secret",
    "receipt-path-token",
)
ALIYUN_TEMPLATES = {"SMS_100": "您的验证码为${code}，5分钟内有效。", "SMS_200": "订单${order}已发货。"}


@pytest.fixture
def fake_aliyun(settings):
    """A running fake Aliyun SMS server, with the aliyun provider's settings pointing at it
    (SMS still routes to the default provider unless a test says otherwise)."""
    from providers.registry import reset_cache
    from tests.fakes.aliyun_server import FakeAliyun

    fake = FakeAliyun({ALIYUN_KEY_ID: ALIYUN_KEY_SECRET}, templates=ALIYUN_TEMPLATES).start()
    settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET = ALIYUN_KEY_ID, ALIYUN_KEY_SECRET
    settings.ALIYUN_SMS_SIGN_NAME, settings.ALIYUN_SMS_BASE_URL = "阿里云测试", fake.url
    settings.ALIYUN_READ_TIMEOUT, settings.ALIYUN_RECEIPT_TOKEN = 1.0, ALIYUN_RECEIPT_TOKEN
    reset_cache()
    yield fake
    fake.stop()
    reset_cache()


@pytest.fixture(autouse=True)
def _fresh_provider_rotation():
    """The rotation and tenants' routes are cached per process: no test sees another's."""
    from communication.services.health import forget_rotation, forget_unflushed_counts
    from communication.services.routing import forget_tenant_orders

    for forget in (forget_rotation, forget_tenant_orders, forget_unflushed_counts):
        forget()
    yield
    for forget in (forget_rotation, forget_tenant_orders, forget_unflushed_counts):
        forget()


POSTMARK_TOKEN, WEBHOOK_SECRET, MAILGUN_SIGNING_KEY = (
    "pm-server-token",
    "hooks:s3cret-pass",
    "mailgun-signing-key",
)


@pytest.fixture
def fake_postmark(settings):
    """A running fake Postmark API, with email going through anymail's Postmark backend to it
    and the tracking webhooks' secrets set (Postmark: basic auth; Mailgun: signing key)."""
    from providers.registry import reset_cache
    from tests.fakes.postmark_server import FakePostmark

    fake = FakePostmark(POSTMARK_TOKEN).start()
    settings.CHANNEL_PROVIDERS = {**settings.CHANNEL_PROVIDERS, "email": "anymail"}
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "POSTMARK_SERVER_TOKEN": POSTMARK_TOKEN,
        "POSTMARK_API_URL": f"{fake.url}/",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
        "REQUESTS_TIMEOUT": (1.0, 1.0),
    }
    reset_cache()
    yield fake
    fake.stop()
    reset_cache()


@functools.cache
def _service_account_key() -> tuple[bytes, bytes]:
    """A test RSA key pair for the fake FCM's service account (made once per run)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture
def fake_fcm(settings):
    """A running fake FCM (and Google token endpoint) that push to Android/iOS devices goes to."""
    from providers.registry import reset_cache
    from tests.fakes.fcm_server import FakeFcm

    private, public = _service_account_key()
    email = "push-sender@authms-test.iam.gserviceaccount.com"
    fake = FakeFcm(project_id="authms-test", client_email=email, public_key_pem=public).start()
    settings.FCM_SERVICE_ACCOUNT_JSON = json.dumps(
        {
            "type": "service_account",
            "project_id": "authms-test",
            "private_key_id": "test-key-1",
            "private_key": private.decode(),
            "client_email": email,
            "token_uri": f"{fake.url}/token",
        }
    )
    settings.FCM_BASE_URL = fake.url
    settings.FCM_CONNECT_TIMEOUT = settings.FCM_READ_TIMEOUT = 1.0
    settings.PUSH_PROVIDERS = {**settings.PUSH_PROVIDERS, "fcm": "fcm"}
    reset_cache()
    yield fake
    fake.stop()
    reset_cache()


@pytest.fixture
def vapid_keys():
    """A fresh VAPID key pair as `manage.py vapid_keys` prints it: (private, public)."""
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("vapid_keys", stdout=out, stderr=io.StringIO())
    pairs = dict(line.split("=", 1) for line in out.getvalue().split())
    return pairs["VAPID_PRIVATE_KEY"], pairs["VAPID_PUBLIC_KEY"]


@pytest.fixture
def fake_webpush(settings, vapid_keys):
    """A running fake Web Push service that browsers' push goes to (loopback allowed for it)."""
    from providers.registry import reset_cache
    from tests.fakes.webpush_server import FakeWebPush

    fake = FakeWebPush().start()
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = vapid_keys
    settings.VAPID_SUBJECT = "mailto:push-ops@example.com"
    settings.PUSH_PROVIDERS = {**settings.PUSH_PROVIDERS, "webpush": "webpush"}
    settings.WEBPUSH_ALLOW_HTTP = settings.WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    settings.WEBPUSH_ENDPOINT_HOSTS = ["127.0.0.1"]
    settings.WEBPUSH_CONNECT_TIMEOUT = settings.WEBPUSH_READ_TIMEOUT = 1.0
    reset_cache()
    yield fake
    fake.stop()
    reset_cache()


@pytest.fixture
def asgi_server(transactional_db):
    """The app under uvicorn (the inbox stream needs ASGI), on this test's committed data."""
    from tests.asgi import start_asgi_server, stop_asgi_server

    running, thread = start_asgi_server()
    yield running
    stop_asgi_server(running, thread)
