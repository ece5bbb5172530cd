"""Notices the service writes itself, as translatable templates.

`notify(template=…, params=…)` stores the text in the deployment's language (LANGUAGE_CODE,
for the console and search) together with the template and its parameters; the API renders
it again in each reader's language when it is read (their profile's, else the request's
Accept-Language, else the tenant's).
"""

from django.utils.translation import gettext_lazy as _

TEMPLATES = {
    "communication.bulk.completed": (
        _("Bulk %(channel)s finished: %(sent)s sent, %(failed)s failed"),
        _("Your bulk %(channel)s to %(total)s recipients has finished sending."),
    ),
    "communication.cap.reached": (
        _("%(meter)s %(period)s cap: %(share)s%% used (%(used)s of %(cap)s)"),
        _("%(left)s remain this %(period)s."),
    ),
    "communication.cap.exhausted": (
        _("%(meter)s %(period)s cap: %(share)s%% used (%(used)s of %(cap)s)"),
        _("Further bulks are refused until the %(period)s ends."),
    ),
    "communication.webhook.disabled": (
        _("Webhook endpoint disabled: %(url)s"),
        _(
            "We stopped sending events to it because %(reason)s. Fix it, then enable it again; recover "
            "what it missed from the endpoint's page or the events feed."
        ),
    ),
}


def render(template: str, params: dict) -> tuple[str, str]:
    """Title and content in the active language."""
    title, content = TEMPLATES[template]
    return str(title) % params, str(content) % params
