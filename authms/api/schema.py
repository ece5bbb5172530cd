"""OpenAPI pieces shared by every endpoint: the error envelope and per-status responses."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Invalid request parameters or body (see `errors`).",
    401: "Missing, malformed, expired or wrongly signed token.",
    403: "Authenticated, but not allowed to do this.",
    404: "The resource does not exist (or is not visible to the caller).",
    409: "Conflicts with the current state (e.g. an idempotency key reused with another body).",
    410: "Gone: what the request points at was purged (e.g. an events cursor past the retention).",
    429: "Too many requests; see Retry-After.",
    500: "Internal error; the message carries a request id.",
    503: "A dependency is unavailable.",
}


class SimpleResponseSerializer(serializers.Serializer):
    """dto.SimpleResponse (+ `errors` on 400)."""

    code = serializers.IntegerField()
    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field name → messages (400 only).",
    )
    timestamp = serializers.DateTimeField()

    class Meta:
        ref_name = "SimpleResponse"


def data_envelope(name: str, data_serializer):
    return inline_serializer(
        name=name,
        fields={
            "code": serializers.IntegerField(),
            "message": serializers.CharField(),
            "data": data_serializer,
            "timestamp": serializers.DateTimeField(),
        },
    )


def error_responses(success, *codes: int, success_status: int = 200) -> dict:
    responses = {success_status: success}
    for code in (*codes, 500):
        responses[code] = OpenApiResponse(SimpleResponseSerializer, description=ERROR_DESCRIPTIONS[code])
    return responses


def strip_trailing_slashes(result, generator, request, public):
    """Routes accept both forms; document them exactly as the contract spells them."""
    result["paths"] = {path.rstrip("/") or "/": item for path, item in result["paths"].items()}
    return result


class TenantJWTScheme(SimpleJWTScheme):
    """`bearerAuth`, the scheme name the AuthMS wiki uses."""

    target_class = "authms.api.authentication.TenantJWTAuthentication"
    name = "bearerAuth"


class BoundedListFieldExtension(OpenApiSerializerFieldExtension):
    """`minItems`/`maxItems` for BoundedListField, whose limit may be a setting read per request."""

    target_class = "authms.api.fields.BoundedListField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        limit = self.target.max_items
        schema["maxItems"] = limit() if callable(limit) else limit
        if not self.target.allow_empty:
            schema["minItems"] = 1
        return schema
