import pytest

from communication.channels import channel_spec
from communication.masking import mask_recipient


def test_each_channel_says_how_its_addresses_behave(settings):
    sms, email = channel_spec("sms"), channel_spec("email")
    assert sms.normalise("13800138000").value == "+8613800138000"
    assert email.normalise("Ann@Example.COM").value == "Ann@example.com"
    assert (sms.suppression_key("+8613800138000"), email.suppression_key("Ann@example.com")) == (
        "+8613800138000", "ann@example.com",
    )  # fmt: skip
    assert (sms.needs_subject, email.needs_subject, sms.unsubscribe_link, email.unsubscribe_link) == (
        False, True, False, True,
    )  # fmt: skip
    settings.SMS_MAX_LENGTH = 123
    assert sms.max_length == 123 and email.max_length == settings.EMAIL_MAX_LENGTH


def test_an_unknown_channel_is_a_lookup_error_and_masking_still_masks():
    with pytest.raises(LookupError):
        channel_spec("fax")
    assert mask_recipient("fax", "+8613800138000") != "+8613800138000"
    assert mask_recipient("push", "+8613800138000") != "+8613800138000"
    assert mask_recipient("push", "dev_01M8NGPJ99481GMGJZKN1B201M") == "dev_01M8NGPJ99481GMGJZKN1B201M"
    assert mask_recipient("sms", "ann@example.com") == "a***@example.com"
