"""Reads of message templates, always within one tenant."""

from authms.errors import NotFoundError
from templates.models import Template


def template_get_active(*, tenant_id: str, code: str, channel: str) -> Template:
    template = Template.objects.filter(
        tenant_id=tenant_id, code=code, channel=channel, is_active=True
    ).first()
    if template is None:
        raise NotFoundError(f"No active {channel} template with code {code!r} in this tenant.")
    return template
