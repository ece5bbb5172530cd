import pytest

from communication.recipients import normalise_all, normalise_email, normalise_phone


@pytest.mark.parametrize(
    "raw", ["13800138000", "+86 138 0013 8000", "+8613800138000", " 138-0013-8000 ", "008613800138000"]
)
def test_chinese_numbers_normalise_to_e164(raw):
    assert normalise_phone(raw).value == "+8613800138000"


def test_other_regions_keep_their_country_code():
    assert normalise_phone("+44 7911 123456").value == "+447911123456"


def test_default_region_comes_from_settings(settings):
    settings.SMS_DEFAULT_REGION = "US"
    assert normalise_phone("(201) 555-0123").value == "+12015550123"


@pytest.mark.parametrize("raw", ["12345", "not a number", "", "+86 000"])
def test_invalid_numbers_carry_an_error(raw):
    recipient = normalise_phone(raw)
    assert not recipient.is_valid and "phone number" in recipient.error


def test_email_domain_is_lower_cased_local_part_kept():
    assert normalise_email(" Zhang.San@Example.COM ").value == "Zhang.San@example.com"


@pytest.mark.parametrize("raw", ["nope", "a@", "@b.com", "a b@c.com"])
def test_invalid_emails_carry_an_error(raw):
    assert "email" in normalise_email(raw).error


def test_duplicates_collapse_to_the_first_in_request_order():
    result = normalise_all("sms", ["13900139000", "13800138000", "+86 139 0013 9000", "bad", "bad"])
    assert [r.value for r in result] == ["+8613900139000", "+8613800138000", "bad"]


def test_email_suppression_matching_ignores_case_phone_does_not_need_to():
    from communication.recipients import suppression_key

    assert suppression_key("email", "Ann@example.com") == "ann@example.com"
    assert suppression_key("sms", "+8613800138000") == "+8613800138000"


@pytest.mark.parametrize("region", ["CN", "US", "GB", "HK"])
def test_the_fast_path_for_e164_mobiles_agrees_with_phonenumbers(region, settings):
    """The shortcut decides only what libphonenumber would decide the same way: checked against
    its full parse over random numbers of the region's code (many of them valid mobiles)."""
    import random

    import phonenumbers
    from phonenumbers.phonemetadata import PhoneMetadata

    from communication.recipients import _e164_mobile_of_region, normalise_phone

    code = PhoneMetadata.metadata_for_region(region).country_code
    rng = random.Random(region)
    shortcut = 0
    for _ in range(10_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([7, 8, 9, 10, 11, 12])))
        text = f"+{code}{'1' if region == 'CN' and rng.random() < 0.6 else ''}{digits}"
        try:
            parsed = phonenumbers.parse(text, region)
            expected = (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_valid_number(parsed)
                else None
            )
        except phonenumbers.NumberParseException:
            expected = None
        fast = _e164_mobile_of_region(text, region)
        if fast is not None:
            shortcut += 1
            assert fast == expected, text
        recipient = normalise_phone(text, region)
        assert (recipient.value if recipient.is_valid else None) == expected, text
    assert shortcut > 100  # the shortcut was really taken
