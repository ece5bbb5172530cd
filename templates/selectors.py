"""Reads of message templates, always within one tenant."""

from django.utils.translation import gettext as _

from authms.errors import NotFoundError
from templates.models import Template


def template_get_active(*, tenant_id: str, code: str, channel: str) -> Template:
    template = Template.objects.filter(
        tenant_id=tenant_id, code=code, channel=channel, is_active=True
    ).first()
    if template is None:
        raise NotFoundError(
            _("No active %(channel)s template with code %(code)r in this tenant.")
            % {"channel": channel, "code": code}
        )
    return template
