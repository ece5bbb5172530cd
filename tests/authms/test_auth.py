"""Real JWTs through the real URL stack: obtain, refresh, and every way a token can be wrong."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from authms.models import Tenant, User
from authms.tokens import token_for
from tests.conftest import access_token_for

TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/token/refresh"
LOGS_URL = "/api/v1/communication/logs"


def _get_logs(token: str):
    return APIClient().get(LOGS_URL, HTTP_AUTHORIZATION=f"Bearer {token}")


def _assert_401(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["code"] == 401 and body["message"] and body["timestamp"].endswith("Z")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_user_obtains_token_pair_with_tenant_claim_and_uses_it(alice):
    response = APIClient().post(TOKEN_URL, {"username": "alice", "password": "pass-word-123"}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["token_type"] == "Bearer" and data["expires_in"] == 15 * 60
    claims = AccessToken(data["access"])
    assert claims["user_id"] == alice.id and claims["tenant_id"] == alice.tenant_id
    assert _get_logs(data["access"]).status_code == 200


def test_refresh_returns_new_access_token_keeping_tenant_claim(alice):
    pair = APIClient().post(TOKEN_URL, {"username": "alice", "password": "pass-word-123"}, format="json")
    refresh = pair.json()["data"]["refresh"]
    response = APIClient().post(REFRESH_URL, {"refresh": refresh}, format="json")
    assert response.status_code == 200
    access = response.json()["data"]["access"]
    assert AccessToken(access)["tenant_id"] == alice.tenant_id
    assert _get_logs(access).status_code == 200


def test_trailing_slash_is_accepted_without_redirect(alice):
    response = APIClient().post(
        TOKEN_URL + "/", {"username": "alice", "password": "pass-word-123"}, format="json"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"username": "alice", "password": "wrong"}, {"username": "nobody", "password": "pass-word-123"}],
)
def test_wrong_credentials_are_401(alice, body):
    _assert_401(APIClient().post(TOKEN_URL, body, format="json"))


def test_missing_credentials_are_400_naming_fields(db):
    response = APIClient().post(TOKEN_URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"username", "password"}


def test_garbage_refresh_token_is_401(db):
    _assert_401(APIClient().post(REFRESH_URL, {"refresh": "not-a-token"}, format="json"))


def test_access_token_cannot_be_used_as_refresh_token(alice):
    _assert_401(APIClient().post(REFRESH_URL, {"refresh": access_token_for(alice)}, format="json"))


def test_no_token_is_401(db):
    _assert_401(APIClient().get(LOGS_URL))


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer not.a.jwt", "Bearer ééé"])
def test_malformed_authorization_header_is_401(db, header):
    _assert_401(APIClient().get(LOGS_URL, HTTP_AUTHORIZATION=header))


def test_expired_token_is_401(alice):
    token = token_for(alice).access_token
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = _get_logs(str(token))
    _assert_401(response)
    assert "expired" in response.json()["message"].lower()


def test_token_signed_with_another_key_is_401(alice):
    claims = dict(AccessToken(access_token_for(alice)).payload)
    forged = jwt.encode(claims, "some-other-secret-key-of-enough-length!", algorithm="HS256")
    _assert_401(_get_logs(forged))


def test_alg_none_token_is_401(alice):
    claims = dict(AccessToken(access_token_for(alice)).payload)

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    _assert_401(_get_logs(unsigned))


def test_token_whose_tenant_claim_was_changed_is_401(alice, bob):
    # Re-signing with the real key is what an attacker cannot do; this checks the
    # claim/user consistency rule itself, for tokens minted by a confused issuer.
    token = token_for(alice).access_token
    token["tenant_id"] = bob.tenant_id
    response = _get_logs(str(token))
    _assert_401(response)
    assert "tenant" in response.json()["message"]


def test_token_without_tenant_claim_is_401(alice):
    token = token_for(alice).access_token
    del token["tenant_id"]
    response = _get_logs(str(token))
    _assert_401(response)
    assert "tenant_id" in response.json()["message"]


def test_token_of_deactivated_user_is_401(alice):
    token = access_token_for(alice)
    User.objects.filter(id=alice.id).update(is_active=False)
    _assert_401(_get_logs(token))


def test_token_of_deactivated_tenant_is_401(alice):
    token = access_token_for(alice)
    Tenant.objects.filter(id=alice.tenant_id).update(is_active=False)
    _assert_401(_get_logs(token))


def test_external_authms_token_is_accepted_and_provisions_the_user(db, external_key):
    claims = {"user_id": "usr_EXTERNAL1", "tenant_id": "tnt_EXTERNAL1", "username": "ext", "exp": 4102444800}
    token = jwt.encode(claims, external_key, algorithm="RS256")
    response = _get_logs(token)
    assert response.status_code == 200, response.content
    user = User.objects.get(id="usr_EXTERNAL1")
    assert user.tenant_id == "tnt_EXTERNAL1" and not user.has_usable_password() and not user.is_staff
    assert _get_logs(token).status_code == 200  # second call reuses the row


def test_the_badge_counts_for_external_tokens_too(db, external_key):
    """The badge reads its counts with our users' row; an external user's comes another way."""
    from notifications.services import notify

    claims = {"user_id": "usr_EXTERNAL2", "tenant_id": "tnt_EXTERNAL2", "exp": 4102444800}
    token = jwt.encode(claims, external_key, algorithm="RS256")
    badge = "/api/v1/notifications/unread-count"
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(badge).json()["data"] == {"unread": 0, "unseen": 0}
    notify(tenant_id="tnt_EXTERNAL2", user_ids=["usr_EXTERNAL2"], type="system", event_type="a.b", title="t")
    assert client.get(badge).json()["data"] == {"unread": 1, "unseen": 1}


def test_external_token_signed_by_another_key_is_401(db, external_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        {"user_id": "usr_X", "tenant_id": "tnt_X", "exp": 4102444800}, other, algorithm="RS256"
    )
    _assert_401(_get_logs(token))
    assert not User.objects.filter(id="usr_X").exists()


def test_local_tokens_still_work_when_external_key_configured(alice, external_key):
    assert _get_logs(access_token_for(alice)).status_code == 200


def test_signing_key_defaults_to_secret_key():
    assert settings.SIMPLE_JWT["SIGNING_KEY"] == settings.SECRET_KEY


def test_a_verified_token_is_still_refused_once_expired(alice, monkeypatch):
    """Verified tokens are remembered by their bytes; their expiry is checked on every request."""
    token = token_for(alice).access_token
    assert _get_logs(str(token)).status_code == 200
    later = token.current_time + settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] + timedelta(seconds=1)
    monkeypatch.setattr("authms.api.authentication.aware_utcnow", lambda: later)
    monkeypatch.setattr("rest_framework_simplejwt.tokens.aware_utcnow", lambda: later)
    response = _get_logs(str(token))
    _assert_401(response)
    assert "expired" in response.json()["message"].lower()


def test_a_verified_token_is_refused_once_revoked_or_its_user_deactivated(alice):
    token = access_token_for(alice)
    assert _get_logs(token).status_code == 200
    alice.is_active = False
    alice.save()
    _assert_401(_get_logs(token))


def test_verified_tokens_are_forgotten_when_settings_change(alice, settings):
    from authms.api.authentication import verified_tokens

    token = access_token_for(alice)
    assert _get_logs(token).status_code == 200
    assert verified_tokens.get(token.encode()) is not None
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "AUDIENCE": "another"}
    assert verified_tokens.get(token.encode()) is None


def test_a_token_differing_from_a_verified_one_is_checked_in_full(alice):
    token = access_token_for(alice)
    assert _get_logs(token).status_code == 200
    header, payload, signature = token.split(".")
    _assert_401(_get_logs(f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"))
