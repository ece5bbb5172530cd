import pytest
from django.core.management import CommandError, call_command

from templates.models import Template


def test_creates_a_template_with_codes_per_provider(tenant_a):
    call_command(
        "create_template", tenant_a.slug, "verify_code", "--channel", "sms", "--body", "Your code is {{code}}",
        "--provider-code", "aliyun=SMS_123", "--provider-code", "submail=abc12", "--sensitive",
    )  # fmt: skip
    template = Template.objects.get(code="verify_code")
    assert template.provider_codes == {"aliyun": "SMS_123", "submail": "abc12"}
    assert (template.tenant_id, template.sensitive, template.name) == (tenant_a.id, True, "verify_code")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider-code", "nosuch=1"], "Unknown provider: nosuch"),
        (["--provider-code", "aliyun"], "invalid provider_code value"),
    ],
)
def test_bad_provider_codes_are_refused(tenant_a, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_template", tenant_a.slug, "otp", "--channel", "sms", "--body", "x", *args)
    assert not Template.objects.exists()


def test_a_duplicate_code_is_refused(tenant_a):
    call_command("create_template", tenant_a.slug, "otp", "--channel", "sms", "--body", "x")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_template", tenant_a.slug, "otp", "--channel", "sms", "--body", "y")
