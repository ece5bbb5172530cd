"""GET/PATCH /admin/delivery-controls: tenant admins set quiet hours, time zone and preference
defaults of their own tenant; only platform admins set sending caps; bad values are 400 and
change nothing."""

import pytest

from authms.models import Tenant

URL = "/api/v1/admin/delivery-controls"


def test_a_tenant_admin_reads_and_sets_the_tenants_controls(client_for, ada, tenant_a, tenant_b):
    client = client_for(ada)
    assert client.get(URL).json()["data"] == {
        "send_caps": {}, "time_zone": "", "quiet_hours": "", "preference_defaults": {}
    }  # fmt: skip
    answer = client.patch(
        URL, {"quiet_hours": "21:00-08:00", "time_zone": "Asia/Shanghai",
              "preference_defaults": {"marketing": {"sms": False}}}, format="json",
    )  # fmt: skip
    assert answer.status_code == 200, answer.json()
    tenant_a.refresh_from_db()
    assert (tenant_a.quiet_hours, tenant_a.time_zone) == ("21:00-08:00", "Asia/Shanghai")
    assert tenant_a.preference_defaults == {"marketing": {"sms": False}}
    assert Tenant.objects.get(pk=tenant_b.pk).quiet_hours == ""  # the other tenant untouched
    from django.contrib.admin.models import LogEntry

    assert "quiet_hours='21:00-08:00'" in LogEntry.objects.get().change_message


def test_sending_caps_are_for_platform_admins(client_for, ada, root, tenant_a, tenant_b):
    refused = client_for(ada).patch(URL, {"send_caps": {"sms": {"day": 10**9}}}, format="json")
    assert refused.status_code == 403
    answer = client_for(root).patch(f"{URL}?tenant_id={tenant_b.id}", {"send_caps": {"sms": {"day": 500}}},
                                    format="json")  # fmt: skip
    assert answer.status_code == 200 and answer.json()["data"]["send_caps"] == {"sms": {"day": 500}}
    assert Tenant.objects.get(pk=tenant_b.pk).send_caps == {"sms": {"day": 500}}
    assert Tenant.objects.get(pk=tenant_a.pk).send_caps == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"send_caps": {"sms": {"day": -1}}}, "send_caps"),
        ({"send_caps": {"sms": {"day": "many"}}}, "send_caps"),
        ({"send_caps": {"spend": {"month": -0.5}}}, "send_caps"),
        ({"send_caps": "lots"}, "send_caps"),
        ({"preference_defaults": {"security": {"email": False}}}, "preference_defaults"),
        ({"preference_defaults": {"gossip": {"email": False}}}, "preference_defaults"),
        ({"quiet_hours": "late"}, "quiet_hours"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"time_zone": "Asia/Shanghai", "quiet_hours": "25:00-01:00"}, "quiet_hours"),
    ],
)
def test_bad_controls_are_400_and_nothing_changes(client_for, root, tenant_a, body, field):
    answer = client_for(root).patch(URL, body, format="json")
    assert answer.status_code == 400 and field in answer.json()["errors"], answer.json()
    tenant_a.refresh_from_db()
    assert (tenant_a.send_caps, tenant_a.time_zone, tenant_a.quiet_hours, tenant_a.preference_defaults) == (
        {}, "", "", {}
    )  # fmt: skip


def test_plain_users_and_other_tenants_are_refused(client_for, alice, ada, tenant_b):
    assert client_for(alice).get(URL).status_code == 403
    assert client_for(alice).patch(URL, {"quiet_hours": "off"}, format="json").status_code == 403
    assert client_for(ada).get(f"{URL}?tenant_id={tenant_b.id}").status_code == 404
