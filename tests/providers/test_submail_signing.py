"""SUBMAIL signatures against values computed by hand (docs/SUBMAIL.md §1, §6).

For appid 10001 and appkey "k3y", the string hashed is
    appid + appkey + "k=v&…" (keys sorted A–Z, raw values, no signature/tag) + appid + appkey

With sign_version=2 the text (`content`) is left out:
    "10001k3y" "appid=10001&sign_type=md5&sign_version=2&timestamp=1414253462&to=13800138000" "10001k3y"
    md5  → 1d360641ae9f34bc78e972ee9d3f728e
    sha1 (sign_type=sha1 in the string) → 46ab05a6747d3f500a123192cc670b0fc5b28a37
Without sign_version the text is signed too:
    "10001k3y" "appid=10001&content=【SUBMAIL】您的验证码是1234&sign_type=md5&timestamp=1414253462&to=13800138000" "10001k3y"
    md5  → 4d6d372f4172ffafdd046f5aa2636590
    sha1 → 5dc8de2bcd500ddfc2fa8b21bda863cc1b64d5ae
(The digests were computed once over exactly those strings, with hashlib and again with
coreutils' md5sum/sha1sum.) Both our client's `sign()` and the fake server's independent
verifier are pinned to them, so neither can drift with the other.
"""

import pytest

from providers.submail import sign
from tests.fakes.submail_server import expected_signature

BASE = {
    "appid": "10001",
    "to": "13800138000",
    "content": "【SUBMAIL】您的验证码是1234",
    "timestamp": "1414253462",
}


@pytest.mark.parametrize(
    "sign_type,expected",
    [("md5", "1d360641ae9f34bc78e972ee9d3f728e"), ("sha1", "46ab05a6747d3f500a123192cc670b0fc5b28a37")],
)
def test_sign_version_2_leaves_content_out(sign_type, expected):
    params = {**BASE, "sign_type": sign_type, "sign_version": "2"}
    assert sign(params, appid="10001", appkey="k3y", sign_type=sign_type) == expected


@pytest.mark.parametrize(
    "sign_type,expected",
    [("md5", "4d6d372f4172ffafdd046f5aa2636590"), ("sha1", "5dc8de2bcd500ddfc2fa8b21bda863cc1b64d5ae")],
)
def test_without_sign_version_everything_but_signature_and_tag_is_signed(sign_type, expected):
    params = {**BASE, "sign_type": sign_type, "tag": "order-1", "signature": "ignored"}
    assert sign(params, appid="10001", appkey="k3y", sign_type=sign_type) == expected


def test_vars_and_multi_are_left_out_under_sign_version_2():
    params = {
        "appid": "10001",
        "project": "ThJBE4",
        "timestamp": "1",
        "sign_type": "md5",
        "sign_version": "2",
    }
    plain = sign(params, appid="10001", appkey="k3y", sign_type="md5")
    with_vars = sign(
        {**params, "vars": '{"code":"1"}', "multi": "[]"}, appid="10001", appkey="k3y", sign_type="md5"
    )
    assert plain == with_vars


def test_normal_mode_sends_the_appkey_itself():
    assert sign(BASE, appid="10001", appkey="k3y", sign_type="normal") == "k3y"


VECTORS = [
    ({**BASE, "sign_type": "md5", "sign_version": "2"}, "1d360641ae9f34bc78e972ee9d3f728e"),
    ({**BASE, "sign_type": "sha1", "sign_version": "2"}, "46ab05a6747d3f500a123192cc670b0fc5b28a37"),
    ({**BASE, "sign_type": "md5", "tag": "order-1"}, "4d6d372f4172ffafdd046f5aa2636590"),
    ({**BASE, "sign_type": "sha1", "tag": "order-1"}, "5dc8de2bcd500ddfc2fa8b21bda863cc1b64d5ae"),
    ({**BASE, "sign_type": "normal"}, "k3y"),
]


@pytest.mark.parametrize("params,expected", VECTORS)
def test_the_fake_servers_own_verifier_agrees_with_the_vectors(params, expected):
    assert expected_signature(params, "k3y") == expected
