"""Token claims, refresh and revocation through the real URL stack."""

from datetime import timedelta

import jwt
import pytest
from rest_framework.test import APIClient

from authms.models import RevokedToken, User
from authms.tokens import revoked_tokens_purge, token_for
from tests.authms.test_auth import LOGS_URL, REFRESH_URL, TOKEN_URL, _assert_401, _get_logs

LOGOUT_URL = "/api/v1/auth/logout"


def _login(username="alice", password="pass-word-123"):
    response = APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def _refresh(refresh):
    return APIClient().post(REFRESH_URL, {"refresh": refresh}, format="json")


def test_refresh_token_of_a_deleted_user_is_401_not_500(alice):
    pair = _login()
    User.objects.filter(id=alice.id).delete()
    _assert_401(_refresh(pair["refresh"]))


def test_refresh_token_of_a_deactivated_user_is_401(alice):
    pair = _login()
    alice.is_active = False
    alice.save()
    _assert_401(_refresh(pair["refresh"]))


def test_deactivation_revokes_tokens_for_good_even_after_reactivation(alice):
    pair = _login()
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    alice.refresh_from_db()
    alice.is_active = True
    alice.save()
    _assert_401(_refresh(pair["refresh"]))
    _assert_401(_get_logs(pair["access"]))
    assert _get_logs(_login()["access"]).status_code == 200


def test_a_password_change_revokes_refresh_and_access_tokens(alice):
    pair = _login()
    alice.set_password("another-pass-456")
    alice.save()
    response = _refresh(pair["refresh"])
    _assert_401(response)
    assert "revoked" in response.json()["message"]
    _assert_401(_get_logs(pair["access"]))
    assert _get_logs(_login(password="another-pass-456")["access"]).status_code == 200


def test_logout_revokes_that_refresh_token_only(alice):
    first, second = _login(), _login()
    response = APIClient().post(LOGOUT_URL, {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 200 and response.json()["data"] == {"revoked": True}
    _assert_401(_refresh(first["refresh"]))
    assert _refresh(second["refresh"]).status_code == 200
    # The access token lives out its short lifetime; that is the documented trade-off.
    assert _get_logs(first["access"]).status_code == 200


def test_logout_everywhere_revokes_every_token_at_once(alice):
    first, second = _login(), _login()
    response = APIClient().post(LOGOUT_URL, {"refresh": first["refresh"], "everywhere": True}, format="json")
    assert response.status_code == 200
    for pair in (first, second):
        _assert_401(_refresh(pair["refresh"]))
        _assert_401(_get_logs(pair["access"]))


def test_logout_twice_is_401_the_second_time(alice):
    pair = _login()
    assert APIClient().post(LOGOUT_URL, {"refresh": pair["refresh"]}, format="json").status_code == 200
    _assert_401(APIClient().post(LOGOUT_URL, {"refresh": pair["refresh"]}, format="json"))


@pytest.mark.parametrize(
    "body", [{}, {"refresh": 123}, {"refresh": ["x"]}, {"refresh": "x", "everywhere": "maybe"}]
)
def test_bad_logout_bodies_are_400(db, body):
    response = APIClient().post(LOGOUT_URL, body, format="json")
    assert response.status_code == 400 and response.json()["errors"]


def test_expired_revocations_are_purged(alice):
    token = token_for(alice)
    RevokedToken.objects.create(jti="old", expires_at=token.current_time - timedelta(seconds=1))
    RevokedToken.objects.create(jti="live", expires_at=token.current_time + timedelta(days=1))
    assert revoked_tokens_purge() == 1
    assert list(RevokedToken.objects.values_list("jti", flat=True)) == ["live"]


def test_tokens_from_before_revocation_support_are_refused(alice):
    """A token without the `ver` claim cannot be revoked, so it is not accepted."""
    token = token_for(alice).access_token
    del token["ver"]
    _assert_401(_get_logs(str(token)))


@pytest.mark.parametrize(
    "claim,value",
    [("user_id", "usr_\x00bad"), ("user_id", 12345), ("user_id", ["usr_x"]), ("user_id", "u" * 31),
     ("tenant_id", {"id": 1}), ("tenant_id", "")],
)  # fmt: skip
def test_malformed_id_claims_are_401_before_any_query(alice, claim, value, django_assert_num_queries):
    token = token_for(alice).access_token
    token[claim] = value
    with django_assert_num_queries(0):
        _assert_401(_get_logs(str(token)))


# --- External issuer ----------------------------------------------------------------------------


def _external(key, **claims):
    base = {"user_id": "usr_EXT1", "tenant_id": "tnt_EXT1", "exp": 4102444800}
    return jwt.encode({**base, **claims}, key, algorithm="RS256")


def test_external_token_without_exp_is_401(db, external_key):
    token = jwt.encode({"user_id": "usr_EXT1", "tenant_id": "tnt_EXT1"}, external_key, algorithm="RS256")
    _assert_401(_get_logs(token))
    assert not User.objects.filter(id="usr_EXT1").exists()


def test_external_refresh_token_is_not_an_access_token(db, external_key):
    _assert_401(_get_logs(_external(external_key, token_type="refresh")))


@pytest.mark.parametrize(
    "claims",
    [
        {"user_id": 42},
        {"tenant_id": ["tnt_A"]},
        {"tenant_id": "t" * 200},
        {"user_id": "usr_\x00"},
        {"user_id": None},
    ],
)
def test_external_claims_of_the_wrong_type_or_length_are_401_and_create_nothing(db, external_key, claims):
    from authms.models import Tenant

    _assert_401(_get_logs(_external(external_key, **claims)))
    assert not User.objects.exists() and not Tenant.objects.exists()


def test_external_username_equal_to_a_local_one_is_namespaced_not_a_500(alice, external_key):
    token = _external(external_key, username="alice", email="x" * 300)
    assert _get_logs(token).status_code == 200
    assert _get_logs(token).status_code == 200
    external = User.objects.get(id="usr_EXT1")
    assert external.username == "ext:alice" and external.email == ""
    assert User.objects.get(username="alice").id == alice.id  # the local alice is untouched


def test_external_tenant_id_that_slugifies_like_a_local_tenant_gets_its_own_slug(tenant_a, external_key):
    token = _external(external_key, tenant_id="acme")  # tenant_a's slug is "acme"
    assert _get_logs(token).status_code == 200
    from authms.models import Tenant

    assert Tenant.objects.get(id="acme").slug.startswith("acme-")


def test_external_tokens_are_still_accepted_for_their_lifetime(db, external_key):
    token = _external(external_key, token_type="access", username="ext-person")
    assert _get_logs(token).status_code == 200
    assert User.objects.get(id="usr_EXT1").username == "ext:ext-person"


def test_refreshed_access_tokens_keep_working_until_revoked(alice):
    pair = _login()
    access = _refresh(pair["refresh"]).json()["data"]["access"]
    assert APIClient().get(LOGS_URL, HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 200
