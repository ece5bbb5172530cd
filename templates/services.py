"""Writes of message templates."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError

from authms.errors import ValidationError
from authms.models import Tenant
from templates.models import Template


def template_create(
    *,
    tenant: Tenant,
    code: str,
    channel: str,
    body: str,
    name: str = "",
    subject: str = "",
    provider_codes: dict[str, str] | None = None,
    sensitive: bool = False,
    category: str = "general",
) -> Template:
    """Create a template, validated like the console's form; `provider_codes` names the
    approved template at each provider (Aliyun needs one)."""
    provider_codes = provider_codes or {}
    unknown = sorted(set(provider_codes) - set(settings.COMMUNICATION_PROVIDERS))
    if unknown:
        raise ValidationError.for_field("provider_codes", f"Unknown provider: {', '.join(unknown)}.")
    template = Template(
        tenant=tenant,
        code=code,
        channel=channel,
        name=name or code,
        subject=subject,
        body=body,
        provider_codes=provider_codes,
        sensitive=sensitive,
        category=category,
    )
    try:
        template.full_clean()
    except DjangoValidationError as exc:
        raise ValidationError(
            "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        ) from None
    template.save()
    return template
