import pytest
from django.core.management import CommandError, call_command

from authms.models import Tenant, User
from communication.models import CommunicationLog


def test_create_tenant_and_user_from_the_command_line(db, capsys):
    call_command("create_tenant", "Initech")
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.id in capsys.readouterr().out
    call_command("create_user", "carol", tenant="initech", password="Corr3ct-Horse!", staff=True)
    carol = User.objects.get(username="carol")
    assert carol.tenant == tenant and carol.is_staff and not carol.is_superuser
    assert carol.check_password("Corr3ct-Horse!")


def test_create_user_superuser_is_also_staff(tenant_a):
    call_command("create_user", "boss", tenant=tenant_a.id, password="Corr3ct-Horse!", superuser=True)
    assert User.objects.filter(username="boss", is_staff=True, is_superuser=True).exists()


def test_create_user_prompts_for_password(tenant_a, monkeypatch):
    answers = iter(["Corr3ct-Horse!", "Corr3ct-Horse!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    call_command("create_user", "dave", tenant="acme")
    assert User.objects.get(username="dave").check_password("Corr3ct-Horse!")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"tenant": "nope", "password": "Corr3ct-Horse!"}, "No tenant"),
        ({"tenant": "acme", "password": "123"}, "too short"),
        ({"tenant": "acme", "password": "Corr3ct-Horse!", "username": "alice"}, "already exists"),
    ],
)
def test_create_user_refuses_bad_input_clearly(alice, kwargs, message):
    username = kwargs.pop("username", "erin")
    with pytest.raises(CommandError, match=message):
        call_command("create_user", username, **kwargs)


def test_duplicate_tenant_slug_is_refused(tenant_a):
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_tenant", "Acme Again", slug="acme")


def test_seed_demo_is_idempotent_and_prints_logins(db, capsys):
    call_command("seed_demo", logs=50)
    call_command("seed_demo", logs=50)
    assert CommunicationLog.objects.count() == 100
    assert set(User.objects.values_list("username", flat=True)) == {"alice", "ada", "bob", "root"}
    out = capsys.readouterr().out
    assert "alice" in out and "demo-pass-2026" in out
