"""The SUBMAIL client and provider against the fake server (real HTTP on 127.0.0.1)."""

import json

import pytest

from providers.base import Outcome, OutgoingMessage, ProviderError
from providers.registry import provider_by_name
from providers.submail import SubmailClient, SubmailConfig, SubmailSmsProvider, describe_error


def _message(index=0, *, body="Your order has shipped.", recipient=None, project="", variables=None):
    return OutgoingMessage(
        log_id=f"log_{index}",
        tenant_id="tnt_1",
        channel="sms",
        recipient=recipient or f"+86138{index:08d}",
        subject="",
        body=body,
        provider_template_id=project,
        variables=variables or {},
    )


@pytest.fixture
def provider(fake_submail):
    return provider_by_name("submail")


@pytest.mark.parametrize("sign_type", ["normal", "md5", "sha1"])
def test_every_sign_type_is_accepted_by_the_server(fake_submail, settings, sign_type):
    settings.SUBMAIL_SIGN_TYPE = sign_type
    client = SubmailClient(SubmailConfig.from_settings())
    answer = client.send(to="13800138000", content="【Acme】hi")
    assert answer["status"] == "success" and len(answer["send_id"]) == 32


def test_wrong_appkey_is_error_108_and_permanent(fake_submail, settings):
    settings.SUBMAIL_APPKEY = "wrong"
    with pytest.raises(ProviderError) as error:
        SubmailClient(SubmailConfig.from_settings()).send(to="13800138000", content="【Acme】hi")
    assert (
        error.value.permanent and "108" in error.value.message and "Invalid signature" in error.value.message
    )


def test_timestamps_follow_the_server_clock(fake_submail):
    fake_submail.clock_skew = 3600  # our clock is an hour behind SUBMAIL's
    client = SubmailClient(SubmailConfig.from_settings())
    assert client.send(to="13800138000", content="【Acme】hi")["status"] == "success"
    assert fake_submail.calls("service/timestamp") == 1
    client.send(to="13800138000", content="【Acme】again")
    assert fake_submail.calls("service/timestamp") == 1  # the offset is kept


def test_multisend_maps_each_answer_to_its_message_and_adds_the_signature(provider, fake_submail):
    fake_submail.faults.error_numbers["13800000001"] = 252
    results = provider.send_many([_message(i) for i in range(3)])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert "252" in results[1].error and "Incorrect recipient number" in results[1].error
    assert results[0].fee == 1 and results[0].provider_message_id in fake_submail.messages
    assert fake_submail.calls("sms/multisend") == 1
    assert {content for _, content in fake_submail.deliveries()} == {"【Acme】Your order has shipped."}
    (_, params) = next(r for r in fake_submail.requests if r[0] == "sms/multisend")
    assert json.loads(params["multi"])[0] == {"to": "13800000000", "vars": {}}


def test_one_message_uses_sms_send(provider, fake_submail):
    assert provider.send_many([_message()])[0].outcome == Outcome.SENT
    assert fake_submail.calls("sms/send") == 1


def test_provider_templates_go_through_xsend_and_multixsend(provider, fake_submail):
    variables = {"code": "1234"}
    provider.send_many([_message(0, project="ThJBE4", variables=variables)])
    provider.send_many([_message(i, project="ThJBE4", variables=variables) for i in range(2)])
    assert fake_submail.calls("sms/xsend") == 1 and fake_submail.calls("sms/multixsend") == 1
    assert all(m.template_id == "ThJBE4" and '"1234"' in m.content for m in fake_submail.messages.values())


def test_numbers_outside_mainland_china_fail_without_a_call(provider, fake_submail):
    (result,) = provider.send_many([_message(recipient="+447911123456")])
    assert result.outcome == Outcome.FAILED and "+86" in result.error
    assert fake_submail.requests == []


def test_quota_exhausted_keeps_messages_for_a_retry(provider, fake_submail, monkeypatch):
    monkeypatch.setattr(
        fake_submail, "_multisend", lambda params: {"status": "error", "code": "903", "msg": "x"}
    )
    results = provider.send_many([_message(i) for i in range(2)])
    assert {r.outcome for r in results} == {Outcome.RETRY} and "Not enough SMS credit" in results[0].error


@pytest.mark.parametrize("fault", ["http_500", "slow", "reset"])
def test_ambiguous_failures_are_outcome_unknown_never_retry(fake_submail, settings, fault):
    settings.SUBMAIL_READ_TIMEOUT = 0.3
    setattr(fake_submail.faults, fault, 1.0)
    fake_submail.faults.slow_seconds = 0.6
    provider = provider_by_name("submail")
    results = provider.send_many([_message(i) for i in range(2)])
    assert {r.outcome for r in results} == {Outcome.UNKNOWN}
    assert all("Outcome unknown" in r.error for r in results)


def test_unreachable_server_is_retryable(fake_submail, settings):
    fake_submail.stop()
    provider = provider_by_name("submail")
    results = provider.send_many([_message()])
    assert results[0].outcome == Outcome.RETRY and "could not be reached" in results[0].error


def test_missing_credentials_fail_clearly(settings, fake_submail):
    settings.SUBMAIL_APPKEY = ""
    from providers.registry import reset_cache

    reset_cache()
    (result,) = provider_by_name("submail").send_many([_message()])
    assert result.outcome == Outcome.FAILED and "SUBMAIL_APPKEY" in result.error


@pytest.mark.parametrize("code", [252, "252"])
def test_error_codes_may_be_int_or_string(code):
    assert describe_error({"status": "error", "code": code, "msg": "bad"}).startswith(
        f"SUBMAIL error {code}: Incorrect recipient number"
    )


def test_the_fake_server_rejects_a_stale_timestamp_and_the_client_treats_it_as_retryable(fake_submail):
    import time

    client = SubmailClient(SubmailConfig.from_settings())
    client._clock_offset, client._clock_checked_at = -30, time.monotonic()  # our clock 30 s behind
    with pytest.raises(ProviderError) as error:
        client.send(to="13800138000", content="【Acme】hi")
    assert "152" in error.value.message and not error.value.permanent


def test_sms_log_answers_from_its_cache_within_the_minute(fake_submail):
    client = SubmailClient(SubmailConfig.from_settings())
    client.send(to="13800138000", content="【Acme】hi")
    first = client.log(start_date=0, end_date=2_000_000_000, rows=50, offset=0)
    client.send(to="13900139000", content="【Acme】again")
    second = client.log(start_date=0, end_date=2_000_000_000, rows=50, offset=0)
    assert first == second and first["total"] == 1
    assert set(first["data"][0]) >= {
        "sendID",
        "to",
        "status",
        "report_state",
        "send_at",
        "sent_at",
        "report_at",
    }


def test_a_timestamp_error_makes_the_client_ask_submails_clock_again(fake_submail):
    import time

    client = SubmailClient(SubmailConfig.from_settings())
    client._clock_offset, client._clock_checked_at = -30, time.monotonic()  # a stale, wrong offset
    with pytest.raises(ProviderError):
        client.send(to="13800138000", content="【Acme】hi")
    assert client._clock_offset is None  # forgotten: the next call fetches service/timestamp
    assert client.send(to="13800138000", content="【Acme】hi")["status"] == "success"


@pytest.mark.parametrize("code", [901, 902, 903, 904, 905, 152])
def test_quota_balance_and_clock_errors_stop_and_retry(code):
    from providers.submail import request_error

    error = request_error({"status": "error", "code": code, "msg": "x"}, "{}")
    assert not error.permanent and not error.outcome_unknown


def test_a_cached_sms_log_answer_to_another_window_is_recognised(fake_submail):
    from datetime import UTC, datetime

    provider = SubmailSmsProvider()
    first_window = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    page = provider.fetch_status_reports(start=first_window[0], end=first_window[1], offset=0, rows=50)
    assert page.answers(offset=0)
    # Same offset, another window, inside SUBMAIL's minute: the cached answer comes back.
    later = provider.fetch_status_reports(
        start=first_window[0], end=datetime(2026, 1, 3, tzinfo=UTC), offset=0, rows=50
    )
    assert not later.answers(offset=0)


def test_a_failing_clock_lookup_leaves_messages_retryable_never_unknown(fake_submail, monkeypatch):
    """No send request was made, so nothing can have been sent (scenario C-ts)."""
    fake_submail.faults.timestamp_503 = True
    results = SubmailSmsProvider().send_many([_message(i) for i in range(3)])
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert not any("Outcome unknown" in r.error for r in results)
    assert [path for path, _ in fake_submail.requests if path != "service/timestamp"] == []


def test_a_503_before_processing_is_retryable_and_nothing_was_stored(fake_submail):
    fake_submail.faults.http_503 = 1.0
    results = SubmailSmsProvider().send_many([_message(i) for i in range(2)])
    assert {r.outcome for r in results} == {Outcome.RETRY} and fake_submail.messages == {}
