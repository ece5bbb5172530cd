from providers.checks import check_channel_providers
from providers.registry import reset_cache


def test_the_default_routes_pass(settings):
    assert check_channel_providers() == []


def test_a_provider_routed_for_a_channel_it_does_not_send_fails_at_start(settings):
    settings.CHANNEL_PROVIDERS = {"sms": "submail", "email": "aliyun"}
    settings.FAILOVER_PROVIDERS = {"sms": ["smtp", "nosuch"]}
    reset_cache()
    assert sorted(error.id for error in check_channel_providers()) == [
        "providers.E001",
        "providers.E002",
        "providers.E002",
    ]
    messages = " ".join(error.msg for error in check_channel_providers())
    assert "'aliyun' is routed for email" in messages and "'smtp' is routed for sms" in messages
    assert "nosuch" in messages
