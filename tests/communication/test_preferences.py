"""Preferences per category × channel: the user's choice, else the tenant's default, else on.
Every test sends to recipients that must be held back beside ones of the same tenant that must
not, so deleting the rule fails it."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from communication.models import CommunicationLog, Preference, Suppression
from communication.unsubscribe import read_unsubscribe_token, unsubscribe_token, unsubscribe_url
from templates.models import Template
from tests.factories import UserFactory

URL = "/api/v1/preferences"
BULK = "/api/v1/communication/bulk"


def bulk(client, recipients, channel="sms", **fields):
    body = {"channel": channel, "content": "Half price today", "recipients": recipients, **fields}
    if channel == "email":
        body.setdefault("subject", "Sale")
    return client.post(BULK, body, format="json")


def outcome(recipient):
    log = CommunicationLog.objects.get(recipient=recipient)
    return log.status, log.status_detail


@pytest.fixture
def carol(tenant_a):
    return UserFactory(username="carol", tenant=tenant_a, phone="13800138001", email="Carol@Example.com")


@pytest.fixture
def dave(tenant_a):
    return UserFactory(username="dave", tenant=tenant_a, phone="+86 138 0013 8002", email="dave@example.com")


def test_every_category_and_channel_is_listed_with_where_it_comes_from(client_for, alice, tenant_a):
    tenant_a.preference_defaults = {"marketing": {"sms": False}}
    tenant_a.save()
    Preference.objects.create(
        tenant=tenant_a, user=alice, category="marketing", channel="email", enabled=False
    )
    body = client_for(alice).get(URL).json()
    assert body["code"] == 200
    lines = {(line["category"], line["channel"]): line for line in body["data"]["preferences"]}
    assert len(lines) == 12
    assert lines["marketing", "sms"] == {
        "category": "marketing", "channel": "sms", "enabled": False, "critical": False, "source": "tenant"
    }  # fmt: skip
    assert lines["marketing", "email"]["source"] == "user" and not lines["marketing", "email"]["enabled"]
    assert lines["account", "sms"]["source"] == "default" and lines["account", "sms"]["enabled"]
    assert lines["security", "push"]["critical"] and lines["security", "push"]["enabled"]
    assert body["data"]["effective_quiet_hours"] == "off"


def test_a_user_who_switched_marketing_sms_off_gets_a_failed_log_saying_so(
    client_for, alice, ada, carol, dave
):
    answer = client_for(carol).put(
        URL, {"preferences": [{"category": "marketing", "channel": "sms", "enabled": False}]}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    response = bulk(client_for(ada), ["13800138001", "13800138002", "13800138003"], category="marketing")
    assert response.status_code == 200, response.json()
    assert outcome("+8613800138001") == ("failed", "preference_off")
    assert (
        "switched marketing SMS messages off"
        in CommunicationLog.objects.get(recipient="+8613800138001").error
    )
    assert outcome("+8613800138002") == ("pending", "queued")  # a user who did not
    assert outcome("+8613800138003") == ("pending", "queued")  # nobody's number
    # Another category, and another channel of the same category, still reach carol.
    bulk(client_for(ada), ["13800138001"], category="account")
    bulk(client_for(ada), ["carol@example.com"], channel="email", category="marketing")
    details = CommunicationLog.objects.filter(user=ada).values_list("channel", "status_detail")
    assert sorted(details) == sorted(
        [
            ("sms", "preference_off"),
            ("sms", "queued"),
            ("sms", "queued"),
            ("sms", "queued"),
            ("email", "queued"),
        ]
    )


def test_the_tenant_default_holds_for_everyone_who_has_not_chosen(client_for, ada, tenant_a, carol, dave):
    tenant_a.preference_defaults = {"marketing": {"email": False}}
    tenant_a.save()
    client_for(dave).put(
        URL, {"preferences": [{"category": "marketing", "channel": "email", "enabled": True}]}, format="json"
    )
    bulk(client_for(ada), ["CAROL@example.com", "dave@example.com", "x@example.com"], channel="email",
         category="marketing")  # fmt: skip
    assert outcome("CAROL@example.com") == ("failed", "preference_off")  # address case differs: still carol
    assert "tenant's default" in CommunicationLog.objects.get(recipient="CAROL@example.com").error
    assert outcome("dave@example.com") == ("pending", "queued")  # opted in
    assert outcome("x@example.com") == ("failed", "preference_off")  # not a user: the default


def test_general_free_text_is_not_held_back_by_a_marketing_choice(client_for, ada, carol):
    Preference.objects.create(
        tenant=carol.tenant, user=carol, category="marketing", channel="sms", enabled=False
    )
    bulk(client_for(ada), ["13800138001"])  # no category: general
    assert outcome("+8613800138001") == ("pending", "queued")


def test_a_template_sends_its_own_category(client_for, ada, tenant_a, carol):
    Template.objects.create(
        tenant=tenant_a, code="promo", channel="sms", name="Promo", body="Sale!", category="marketing"
    )
    Preference.objects.create(tenant=tenant_a, user=carol, category="marketing", channel="sms", enabled=False)
    response = client_for(ada).post(BULK, {"channel": "sms", "template": "promo", "recipients": ["13800138001"]},
                                    format="json")  # fmt: skip
    assert response.status_code == 200
    assert outcome("+8613800138001") == ("failed", "preference_off")


def test_critical_categories_cannot_be_switched_off_and_nothing_of_the_request_is_kept(client_for, carol):
    response = client_for(carol).put(
        URL,
        {
            "quiet_hours": "22:00-07:00",
            "preferences": [
                {"category": "marketing", "channel": "sms", "enabled": False},
                {"category": "security", "channel": "sms", "enabled": False},
            ],
        },
        format="json",
    )
    assert response.status_code == 400 and "critical" in str(response.json()["errors"]), response.json()
    assert not Preference.objects.exists()
    carol.refresh_from_db()
    assert carol.quiet_hours == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preferences": [{"category": "spam", "channel": "sms", "enabled": False}]}, "preferences"),
        ({"preferences": [{"category": "marketing", "channel": "fax", "enabled": False}]}, "preferences"),
        ({"preferences": [{"category": "marketing", "channel": "sms"}]}, "preferences"),
        ({"preferences": [{"category": "marketing", "channel": "sms", "enabled": "maybe"}]}, "preferences"),
        ({"preferences": "marketing"}, "preferences"),
        (
            {"preferences": [{"category": "marketing", "channel": "sms", "enabled": False}] * 13},
            "preferences",
        ),
        ({"quiet_hours": "9pm-8am"}, "quiet_hours"),
        ({"quiet_hours": "21:00-21:00"}, "quiet_hours"),
        ({"quiet_hours": "24:00-08:00"}, "quiet_hours"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": 8}, "time_zone"),
    ],
)
def test_bad_preferences_are_400_and_nothing_is_written(client_for, carol, body, field):
    response = client_for(carol).put(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert any(key.startswith(field) for key in response.json()["errors"]), response.json()
    assert not Preference.objects.exists()


def test_preferences_need_a_login():
    assert APIClient().get(URL).status_code == 401


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"category": "gossip"}, "Unknown category"),
        ({"category": "security"}, "must use a template"),
    ],
)
def test_bulk_with_an_unknown_or_critical_free_text_category_is_400(client_for, ada, fields, message):
    response = bulk(client_for(ada), ["13800138001"], **fields)
    assert response.status_code == 400 and message in str(response.json()["errors"]["category"])
    assert not CommunicationLog.objects.exists()


def test_a_template_of_another_category_cannot_be_relabelled(client_for, ada, tenant_a):
    Template.objects.create(
        tenant=tenant_a, code="otp", channel="sms", name="OTP", body="{{code}}", category="security"
    )
    response = client_for(ada).post(
        BULK, {"channel": "sms", "template": "otp", "variables": {"code": "1"}, "recipients": ["13800138001"],
               "category": "marketing"}, format="json",
    )  # fmt: skip
    assert response.status_code == 400 and "category" in response.json()["errors"]


@pytest.mark.parametrize(
    "defaults",
    [{"security": {"sms": False}}, {"gossip": {"sms": False}}, {"marketing": {"fax": False}},
     {"marketing": {"sms": "no"}}, {"marketing": False}, ["marketing"]],
)  # fmt: skip
def test_tenant_defaults_are_validated(tenant_a, defaults):
    tenant_a.preference_defaults = defaults
    with pytest.raises(ValidationError) as error:
        tenant_a.full_clean()
    assert "preference_defaults" in error.value.message_dict


def test_users_phones_are_stored_as_e164_so_bulk_numbers_find_them(carol, dave):
    assert (carol.phone, dave.phone) == ("+8613800138001", "+8613800138002")


# --- The email's unsubscribe link -------------------------------------------------------------


def _link(tenant, recipient, category="marketing"):
    token = unsubscribe_token(tenant_id=tenant.id, channel="email", recipient=recipient, category=category)
    return f"/api/v1/communication/unsubscribe/{token}"


def _token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_one_click_switches_the_category_off_for_a_user_and_other_email_still_arrives(client_for, ada, carol):
    answer = APIClient().post(_link(carol.tenant, "carol@example.com"), {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["data"] == {"unsubscribed": True, "category": "marketing"}
    assert Preference.objects.get(user=carol).enabled is False
    assert not Suppression.objects.exists()
    bulk(client_for(ada), ["carol@example.com"], channel="email", category="marketing")
    bulk(client_for(ada), ["carol@example.com"], channel="email", category="account")
    assert sorted(CommunicationLog.objects.values_list("status_detail", flat=True)) == [
        "preference_off",
        "queued",
    ]
    # …and carol sees it in her preferences, and may switch it back on.
    lines = client_for(carol).get(URL).json()["data"]["preferences"]
    assert {
        "category": "marketing",
        "channel": "email",
        "enabled": False,
        "critical": False,
        "source": "user",
    } in lines


def test_one_click_for_an_address_of_nobody_suppresses_that_category_only(client_for, ada, tenant_a):
    APIClient().post(_link(tenant_a, "x@example.com"), {"List-Unsubscribe": "One-Click"})
    assert Suppression.objects.get().category == "marketing"
    bulk(client_for(ada), ["x@example.com"], channel="email", category="marketing")
    bulk(client_for(ada), ["x@example.com"], channel="email", category="account")
    assert sorted(CommunicationLog.objects.values_list("status_detail", flat=True)) == [
        "queued",
        "suppressed",
    ]
    assert "unsubscribed from marketing" in CommunicationLog.objects.get(status_detail="suppressed").error


def test_unsubscribe_from_all_stays_available(client_for, ada, carol):
    answer = APIClient().post(_link(carol.tenant, "carol@example.com"), {"scope": "all"})
    assert answer.json()["data"]["category"] == "all"
    assert Suppression.objects.get().category == ""
    bulk(client_for(ada), ["carol@example.com"], channel="email", category="account")
    assert outcome("carol@example.com") == ("failed", "suppressed")


def test_the_confirmation_page_offers_the_category_and_everything(tenant_a):
    page = APIClient().get(_link(tenant_a, "x@example.com"), HTTP_ACCEPT="text/html")
    assert b"Unsubscribe from marketing emails" in page.content
    assert b"Unsubscribe from all emails" in page.content


def test_a_critical_emails_link_names_no_category(tenant_a):
    url = unsubscribe_url(
        tenant_id=tenant_a.id, channel="email", recipient="x@example.com", category="security"
    )
    assert read_unsubscribe_token(_token_of(url)) == {"t": tenant_a.id, "c": "email", "r": "x@example.com"}


def test_sent_emails_carry_a_link_for_their_category(
    client_for, ada, recording_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        bulk(client_for(ada), ["x@example.com"], channel="email", category="marketing")
    (message,) = recording_provider.received
    assert read_unsubscribe_token(_token_of(message.unsubscribe_url))["k"] == "marketing"
