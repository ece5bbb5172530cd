"""Aliyun OpenAPI request signing: V3 (ACS3-HMAC-SHA256, the default) and V2 (HMAC-SHA1 RPC).

Both follow docs/ALIYUN.md §2–3 and are pinned in tests to Aliyun's published vectors.
Pure functions: no settings, no clock, no network.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """Aliyun's "POP" encoding: RFC 3986 unreserved characters stay, everything else is %XY
    (uppercase), a space is %20, `*` is %2A, `~` stays."""
    return quote(str(value), safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{percent_encode(name)}={percent_encode(value)}" for name, value in sorted(params.items())
    )


# --- V2 ----------------------------------------------------------------------------------


def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def v2_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The `Signature` parameter for `params` (every request parameter except Signature)."""
    digest = hmac.new(
        f"{access_key_secret}&".encode(), v2_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


# --- V3 ----------------------------------------------------------------------------------


def v3_canonical_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], payload_sha256: str
) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders) for the given headers, all of which are signed."""
    lowered = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed_headers = ";".join(names)
    request = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers,
            signed_headers,
            payload_sha256,
        ]
    )
    return request, signed_headers


def v3_authorization(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The `Authorization` header value; `headers` are the ones to sign (host, x-acs-*)."""
    request, signed_headers = v3_canonical_request(method, path, query, headers, payload_sha256)
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(request.encode()).hexdigest()}"
    signature = hmac.new(access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
