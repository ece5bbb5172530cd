"""`{{name}}` placeholder rendering, shared by templates and inline bulk content."""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from authms.errors import ValidationError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MASK = "******"


def placeholders(*texts: str) -> list[str]:
    """Names used by the texts, in first-use order."""
    names: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER.finditer(text or ""):
            names.setdefault(match.group(1), None)
    return list(names)


def missing_variables(variables: dict[str, str], *texts: str) -> list[str]:
    return [name for name in placeholders(*texts) if name not in variables]


def fill(text: str, variables: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: variables[match.group(1)], text or "")


def fill_masked(text: str) -> str:
    return PLACEHOLDER.sub(MASK, text or "")


@dataclass(frozen=True)
class Rendered:
    subject: str  # what is stored and shown
    content: str
    outbound_subject: str  # what the provider receives (differs only when sensitive)
    outbound_content: str


def render(*, body: str, subject: str = "", variables: dict[str, str], sensitive: bool = False) -> Rendered:
    """Fill every placeholder, or raise one 400 naming all the missing variables."""
    missing = missing_variables(variables, subject, body)
    if missing:
        message = _("Missing template variables: %(names)s.") % {"names": ", ".join(missing)}
        raise ValidationError.for_field("variables", message)
    real_subject, real_content = fill(subject, variables), fill(body, variables)
    return Rendered(
        subject=fill_masked(subject) if sensitive else real_subject,
        content=fill_masked(body) if sensitive else real_content,
        outbound_subject=real_subject,
        outbound_content=real_content,
    )
