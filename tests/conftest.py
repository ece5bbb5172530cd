import os
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from authms.api.serializers import TenantTokenObtainPairSerializer
from tests.factories import LogFactory, TenantFactory, UserFactory


def pytest_collection_finish(session):
    # In CI an integration test must never quietly run against the wrong database.
    if os.environ.get("CI") == "true" and not os.environ.get("DATABASE_URL", "").startswith("postgres"):
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
    """Tenant admin of tenant A."""
    return UserFactory(username="ada", tenant=tenant_a, is_staff=True)


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
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
