"""Aliyun signers pinned to Aliyun's published vectors (docs/ALIYUN.md §2.1, §3), never to our own output."""

import pytest

from providers.aliyun_signing import EMPTY_BODY_SHA256, v2_signature, v2_string_to_sign, v3_authorization

VECTOR_A = {  # the official SMS signing demo
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_v2_sms_demo_vector():
    assert v2_string_to_sign("GET", VECTOR_A).startswith(
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
        "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C"
    )
    assert v2_signature("GET", VECTOR_A, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


GENERIC_RPC_VECTOR = {  # ECS DescribeRegions, the RPC signing doc's example
    "TimeStamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}
LEGACY_SDK_VECTOR = {  # the legacy Python SDK's own unit test (its nonce and timestamp swapped)
    "Version": "version",
    "Action": "action_name",
    "Format": "None",  # the test's unset format, stringified by its py2 composer
    "RegionId": "regionid",
    "Timestamp": "7e1c7d12-7551-4856-8abb-1938ccac6bcc",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureType": "",
    "SignatureVersion": "1.0",
    "SignatureNonce": "2018-12-04T04:03:12Z",
    "AccessKeyId": "accesskeyid",
}


@pytest.mark.parametrize(
    ("params", "secret", "signature"),
    [
        (GENERIC_RPC_VECTOR, "testsecret", "CT9X0VtwR86fNWSnsc6v8YGOjuE="),
        (LEGACY_SDK_VECTOR, "secret", "Ej4GsaOI7FJyN00E5OpDHHCx2vk="),
    ],
)
def test_v2_other_published_vectors(params, secret, signature):
    assert v2_signature("GET", params, secret) == signature


def test_v3_official_fixed_parameter_vector():
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
    }
    authorization = v3_authorization(
        method="POST",
        path="/",
        query={"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"},
        headers=headers,
        payload_sha256=EMPTY_BODY_SHA256,
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
    )
    assert authorization == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )
